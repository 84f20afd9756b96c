import CNftables

extension NftnlObjects {
    /// One libnftnl expression; encodings as `nft --debug=netlink` shows them.
    static func expression(_ model: NftExpression, setIDs: [String: UInt32]) throws(FirewallError) -> OpaquePointer {
        guard let expression = nftnl_expr_alloc(name(of: model)) else { throw outOfMemory("nftnl_expr_alloc") }
        let register1 = NFT_REG_1.rawValue
        func setU32(_ attribute: Int, _ value: UInt32) { nftnl_expr_set_u32(expression, UInt16(attribute), value) }
        switch model {
        case .meta(let key):
            setU32(NFTNL_EXPR_META_KEY, metaKey(key).rawValue)
            setU32(NFTNL_EXPR_META_DREG, register1)
        case .compare(let comparison, let data):
            setU32(NFTNL_EXPR_CMP_SREG, register1)
            setU32(NFTNL_EXPR_CMP_OP, compareOperator(comparison).rawValue)
            _ = data.withUnsafeBytes { nftnl_expr_set(expression, attribute(NFTNL_EXPR_CMP_DATA), $0.baseAddress, UInt32($0.count)) }
        case .payload(let base, let offset, let length):
            setU32(NFTNL_EXPR_PAYLOAD_BASE, (base == .network ? NFT_PAYLOAD_NETWORK_HEADER : NFT_PAYLOAD_TRANSPORT_HEADER).rawValue)
            setU32(NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            setU32(NFTNL_EXPR_PAYLOAD_LEN, length)
            setU32(NFTNL_EXPR_PAYLOAD_DREG, register1)
        case .lookup(let set):
            setU32(NFTNL_EXPR_LOOKUP_SREG, register1)
            nftnl_expr_set_str(expression, attribute(NFTNL_EXPR_LOOKUP_SET), set)
            setU32(NFTNL_EXPR_LOOKUP_SET_ID, setIDs[set] ?? 0)
            setU32(NFTNL_EXPR_LOOKUP_FLAGS, 0)
        case .fibDestinationType:
            setU32(NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR.rawValue)
            setU32(NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE.rawValue)
            setU32(NFTNL_EXPR_FIB_DREG, register1)
        case .conntrackDirection:
            setU32(NFTNL_EXPR_CT_KEY, NFT_CT_DIRECTION.rawValue)
            setU32(NFTNL_EXPR_CT_DREG, register1)
        case .counter(let name):
            setU32(NFTNL_EXPR_OBJREF_IMM_TYPE, UInt32(NFT_OBJECT_COUNTER))
            nftnl_expr_set_str(expression, attribute(NFTNL_EXPR_OBJREF_IMM_NAME), name)
        case .verdict(let verdict):
            setU32(NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT.rawValue)
            switch verdict {
            case .accept: setU32(NFTNL_EXPR_IMM_VERDICT, UInt32(NF_ACCEPT))
            case .return: setU32(NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: NFT_RETURN.rawValue))
            case .drop: setU32(NFTNL_EXPR_IMM_VERDICT, UInt32(NF_DROP))
            case .jump(let chain):
                setU32(NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: NFT_JUMP.rawValue))
                nftnl_expr_set_str(expression, attribute(NFTNL_EXPR_IMM_CHAIN), chain)
            }
        case .reject(let kind):
            switch kind {
            case .tcpReset:
                setU32(NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST.rawValue)
                nftnl_expr_set_u8(expression, attribute(NFTNL_EXPR_REJECT_CODE), 0)
            case .portUnreachable:
                setU32(NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH.rawValue)
                nftnl_expr_set_u8(expression, attribute(NFTNL_EXPR_REJECT_CODE), UInt8(NFT_REJECT_ICMPX_PORT_UNREACH.rawValue))
            }
        }
        return expression
    }

    private static func metaKey(_ key: NftExpression.MetaKey) -> nft_meta_keys {
        switch key {
        case .l4proto: NFT_META_L4PROTO
        case .nfproto: NFT_META_NFPROTO
        case .iifname: NFT_META_IIFNAME
        }
    }

    private static func compareOperator(_ comparison: NftExpression.CompareOperator) -> nft_cmp_ops {
        switch comparison {
        case .equal: NFT_CMP_EQ
        case .notEqual: NFT_CMP_NEQ
        case .greaterOrEqual: NFT_CMP_GTE
        case .lessOrEqual: NFT_CMP_LTE
        }
    }

    private static func name(of model: NftExpression) -> String {
        switch model {
        case .meta: "meta"
        case .compare: "cmp"
        case .payload: "payload"
        case .lookup: "lookup"
        case .fibDestinationType: "fib"
        case .conntrackDirection: "ct"
        case .counter: "objref"
        case .verdict: "immediate"
        case .reject: "reject"
        }
    }
}
