import CNftables

/// The libnftnl functions of one object kind (object, set, chain, rule), so one dump routine serves all.
struct NftnlKind: Sendable {
    let dumpType: nf_tables_msg_types
    let tableAttribute: UInt16
    let allocate: @Sendable () -> OpaquePointer?
    let free: @Sendable (OpaquePointer) -> Void
    let buildPayload: @Sendable (UnsafeMutablePointer<nlmsghdr>, OpaquePointer) -> Void
    let parse: @Sendable (UnsafePointer<nlmsghdr>, OpaquePointer) -> Int32
    let setString: @Sendable (OpaquePointer, UInt16, String) -> Void
    let getString: @Sendable (OpaquePointer, UInt16) -> String

    static let object = NftnlKind(
        dumpType: NFT_MSG_GETOBJ, tableAttribute: attribute(NFTNL_OBJ_TABLE),
        allocate: { nftnl_obj_alloc() }, free: { nftnl_obj_free($0) },
        buildPayload: { nftnl_obj_nlmsg_build_payload($0, $1) }, parse: { nftnl_obj_nlmsg_parse($0, $1) },
        setString: { nftnl_obj_set_str($0, $1, $2) }, getString: { text(nftnl_obj_get_str($0, $1)) }
    )

    static let set = NftnlKind(
        dumpType: NFT_MSG_GETSET, tableAttribute: attribute(NFTNL_SET_TABLE),
        allocate: { nftnl_set_alloc() }, free: { nftnl_set_free($0) },
        buildPayload: { nftnl_set_nlmsg_build_payload($0, $1) }, parse: { nftnl_set_nlmsg_parse($0, $1) },
        setString: { _ = nftnl_set_set_str($0, $1, $2) }, getString: { text(nftnl_set_get_str($0, $1)) }
    )

    static let chain = NftnlKind(
        dumpType: NFT_MSG_GETCHAIN, tableAttribute: attribute(NFTNL_CHAIN_TABLE),
        allocate: { nftnl_chain_alloc() }, free: { nftnl_chain_free($0) },
        buildPayload: { nftnl_chain_nlmsg_build_payload($0, $1) }, parse: { nftnl_chain_nlmsg_parse($0, $1) },
        setString: { _ = nftnl_chain_set_str($0, $1, $2) }, getString: { text(nftnl_chain_get_str($0, $1)) }
    )

    static let rule = NftnlKind(
        dumpType: NFT_MSG_GETRULE, tableAttribute: attribute(NFTNL_RULE_TABLE),
        allocate: { nftnl_rule_alloc() }, free: { nftnl_rule_free($0) },
        buildPayload: { nftnl_rule_nlmsg_build_payload($0, $1) }, parse: { nftnl_rule_nlmsg_parse($0, $1) },
        setString: { _ = nftnl_rule_set_str($0, $1, $2) }, getString: { text(nftnl_rule_get_str($0, $1)) }
    )

    /// A C string attribute, or "" when unset.
    static func text(_ value: UnsafePointer<CChar>?) -> String {
        value.map { String(cString: $0) } ?? ""
    }
}
