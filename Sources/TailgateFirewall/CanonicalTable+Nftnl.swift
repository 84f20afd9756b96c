import CNftables

extension CanonicalTable {
    /// The desired table: the libnftnl objects apply sends, read through the same getters as a dump.
    /// (No round trip through the netlink encoding: libnftnl writes objref names without a NUL, which
    /// the kernel accepts but its own parser then reads past.)
    init(desired ruleset: FirewallRuleset) throws(FirewallError) {
        let table = ruleset.tableName
        for name in ruleset.counterNames { objects[name] = UInt32(NFT_OBJECT_COUNTER) }
        for model in ruleset.sets {
            let set = try NftnlObjects.set(table: table, model)
            defer { nftnl_set_free(set) }
            sets[model.name] = CanonicalSet(header: Self.setHeader(set), elements: Self.elements(of: set), isManaged: model.isManaged)
        }
        for model in ruleset.chains {
            let chain = try NftnlObjects.chain(table: table, model)
            defer { nftnl_chain_free(chain) }
            chains[model.name] = Self.chainHeader(chain)
        }
        let setIDs = Dictionary(uniqueKeysWithValues: ruleset.sets.map { ($0.name, $0.id) })
        for model in ruleset.rules {
            let rule = try NftnlObjects.rule(table: table, model, setIDs: setIDs)
            defer { nftnl_rule_free(rule) }
            rules[model.chain, default: []].append(Self.ruleText(rule))
            ruleTexts[model.chain, default: []].append(model.text)
        }
    }

    static func setHeader(_ set: OpaquePointer) -> String {
        let length = nftnl_set_get_u32(set, attribute(NFTNL_SET_KEY_LEN))
        let flags = nftnl_set_get_u32(set, attribute(NFTNL_SET_FLAGS))
        let sizeAttribute = attribute(NFTNL_SET_DESC_SIZE)
        let size = nftnl_set_is_set(set, sizeAttribute) ? ", size \(nftnl_set_get_u32(set, sizeAttribute))" : ""
        return "key length \(length), flags 0x\(String(flags, radix: 16))\(size)"
    }

    /// `key-hex flags N` for each element, sorted (interval sets include the leading `0 END`).
    static func elements(of set: OpaquePointer) -> [String] {
        guard let iterator = nftnl_set_elems_iter_create(set) else { return [] }
        defer { nftnl_set_elems_iter_destroy(iterator) }
        var elements: [String] = []
        while let element = nftnl_set_elems_iter_next(iterator) {
            var length: UInt32 = 0
            var key: [UInt8] = []
            if let data = nftnl_set_elem_get(element, attribute(NFTNL_SET_ELEM_KEY), &length) {
                key = Array(UnsafeRawBufferPointer(start: data, count: Int(length)))
            }
            let flagsAttribute = attribute(NFTNL_SET_ELEM_FLAGS)
            let flags = nftnl_set_elem_is_set(element, flagsAttribute) ? nftnl_set_elem_get_u32(element, flagsAttribute) : 0
            elements.append("\(ByteKey.hex(key)) flags \(flags)")
        }
        return elements.sorted()
    }

    static func chainHeader(_ chain: OpaquePointer) -> String {
        guard nftnl_chain_is_set(chain, attribute(NFTNL_CHAIN_HOOKNUM)) else { return "regular" }
        let type = nftnl_chain_get_str(chain, attribute(NFTNL_CHAIN_TYPE)).map { String(cString: $0) } ?? "?"
        let hook = nftnl_chain_get_u32(chain, attribute(NFTNL_CHAIN_HOOKNUM))
        let priority = nftnl_chain_get_s32(chain, attribute(NFTNL_CHAIN_PRIO))
        let policy = nftnl_chain_get_u32(chain, attribute(NFTNL_CHAIN_POLICY))
        let hooks = ["prerouting", "input", "forward", "output", "postrouting"]  // NF_INET_* in order
        let hookName = hooks.indices.contains(Int(hook)) ? hooks[Int(hook)] : "\(hook)"
        let policyName = policy == UInt32(NF_ACCEPT) ? "accept" : policy == UInt32(NF_DROP) ? "drop" : "\(policy)"
        return "type \(type) hook \(hookName) priority \(priority) policy \(policyName)"
    }

    /// `[name args] …` per expression, as libnftnl prints them (nft --debug=netlink).
    static func ruleText(_ rule: OpaquePointer) -> String {
        guard let iterator = nftnl_expr_iter_create(rule) else { return "" }
        defer { nftnl_expr_iter_destroy(iterator) }
        var parts: [String] = []
        var buffer = [CChar](repeating: 0, count: 1024)
        while let expression = nftnl_expr_iter_next(iterator) {
            let name = nftnl_expr_get_str(expression, attribute(NFTNL_EXPR_NAME)).map { String(cString: $0) } ?? "?"
            let written = nftnl_expr_snprintf(&buffer, buffer.count, expression, NFTNL_OUTPUT_DEFAULT.rawValue, 0)
            let arguments = written >= 0 ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            parts.append("[\(name) \(arguments)]")
        }
        return parts.joined(separator: " ")
    }
}
