import CNftables

extension NetlinkBatch {
    /// The atomic replace: NEWTABLE (create if missing, so the delete cannot fail), DELTABLE,
    /// NEWTABLE (exclusive), counters, each set with its elements, chains, then rules in order.
    static func replacing(with ruleset: FirewallRuleset, keeping bans: [BanEntry] = [], beginSequence: UInt32) throws(FirewallError) -> NetlinkBatch {
        var batch = NetlinkBatch(beginSequence: beginSequence)
        let table = ruleset.tableName
        try batch.appendTableReset(table)
        let createExclusive = NLM_F_CREATE | NLM_F_EXCL
        try batch.appendObject(NftnlObjects.table(table), free: nftnl_table_free) { batch, object in
            batch.append(NFT_MSG_NEWTABLE, flags: createExclusive, "create table inet \(table)") { nftnl_table_nlmsg_build_payload($0, object) }
        }
        for name in ruleset.counterNames {
            try batch.appendObject(NftnlObjects.counter(table: table, name: name), free: nftnl_obj_free) { batch, object in
                batch.append(NFT_MSG_NEWOBJ, flags: createExclusive, "add counter \(name)") { nftnl_obj_nlmsg_build_payload($0, object) }
            }
        }
        for model in ruleset.sets {
            try batch.appendObject(NftnlObjects.set(table: table, model), free: nftnl_set_free) { batch, set in
                batch.append(NFT_MSG_NEWSET, flags: createExclusive, "add set \(model.name)") { nftnl_set_nlmsg_build_payload($0, set) }
                batch.appendElements(of: set, named: model.name, count: model.elements.count)
            }
        }
        try batch.appendBans(bans, table: table)
        for model in ruleset.chains {
            try batch.appendObject(NftnlObjects.chain(table: table, model), free: nftnl_chain_free) { batch, chain in
                batch.append(NFT_MSG_NEWCHAIN, flags: createExclusive, "add chain \(model.name)") { nftnl_chain_nlmsg_build_payload($0, chain) }
            }
        }
        let setIDs = Dictionary(uniqueKeysWithValues: ruleset.sets.map { ($0.name, $0.id) })
        for model in ruleset.rules {
            try batch.appendObject(NftnlObjects.rule(table: table, model, setIDs: setIDs), free: nftnl_rule_free) { batch, rule in
                batch.append(NFT_MSG_NEWRULE, flags: NLM_F_CREATE | NLM_F_APPEND, "add rule to chain \(model.chain): \(model.text)") {
                    nftnl_rule_nlmsg_build_payload($0, rule)
                }
            }
        }
        batch.finish()
        return batch
    }

    /// Removes the table if it exists: NEWTABLE (create if missing) and DELTABLE, so it never fails with ENOENT.
    static func removing(table: String, beginSequence: UInt32) throws(FirewallError) -> NetlinkBatch {
        var batch = NetlinkBatch(beginSequence: beginSequence)
        try batch.appendTableReset(table)
        batch.finish()
        return batch
    }

    private mutating func appendTableReset(_ table: String) throws(FirewallError) {
        try appendObject(NftnlObjects.table(table), free: nftnl_table_free) { batch, object in
            batch.append(NFT_MSG_NEWTABLE, flags: NLM_F_CREATE, "create table inet \(table) if missing") {
                nftnl_table_nlmsg_build_payload($0, object)
            }
            batch.append(NFT_MSG_DELTABLE, flags: 0, "delete table inet \(table)") { nftnl_table_nlmsg_build_payload($0, object) }
        }
    }

    /// NEWSETELEM messages for all elements, split so that no message exceeds the 64 KiB attribute limit.
    private mutating func appendElements(of set: OpaquePointer, named name: String, count: Int) {
        guard count > 0, let iterator = nftnl_set_elems_iter_create(set) else { return }
        defer { nftnl_set_elems_iter_destroy(iterator) }
        var more = true
        var part = 1
        while more {
            let description = part == 1 ? "add elements to set \(name)" : "add elements to set \(name) (part \(part))"
            append(NFT_MSG_NEWSETELEM, flags: NLM_F_CREATE | NLM_F_EXCL, description) {
                more = nftnl_set_elems_nlmsg_build_payload_iter($0, iterator) > 0
            }
            part += 1
        }
    }

    /// Runs `body` with a freshly built libnftnl object and frees it afterwards.
    private mutating func appendObject(
        _ object: OpaquePointer, free: (OpaquePointer) -> Void, _ body: (inout NetlinkBatch, OpaquePointer) -> Void
    ) {
        defer { free(object) }
        body(&self, object)
    }
}
