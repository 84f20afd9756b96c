import CNftables

extension NetlinkSocket {
    /// The live table in canonical form and whether every reply came from the same ruleset
    /// generation (else the caller dumps again); nil when the table is missing.
    func dumpTable(_ table: String) throws(FirewallError) -> (table: CanonicalTable, isConsistent: Bool)? {
        guard let flags = try tableFlags(table) else { return nil }
        var canonical = CanonicalTable()
        canonical.tableFlags = flags
        var observation = DumpObservation()
        var complete = try dump(.object, table: table, observation: &observation) { object in
            guard let object else { return canonical.unparsed += 1 }
            canonical.objects[NftnlKind.object.getString(object, attribute(NFTNL_OBJ_NAME))] = nftnl_obj_get_u32(object, attribute(NFTNL_OBJ_TYPE))
        }
        var setHeaders: [String: String] = [:]
        if complete {
            complete = try dump(.set, table: table, observation: &observation) { set in
                guard let set else { return canonical.unparsed += 1 }
                setHeaders[NftnlKind.set.getString(set, attribute(NFTNL_SET_NAME))] = CanonicalTable.setHeader(set)
            }
        }
        for (name, header) in setHeaders.sorted(by: { $0.key < $1.key }) where complete {
            if let elements = try setElements(table, set: name, observation: &observation) {
                canonical.sets[name] = CanonicalTable.CanonicalSet(header: header, elements: elements)
            } else {
                complete = false
            }
        }
        if complete {
            complete = try dump(.chain, table: table, observation: &observation) { chain in
                guard let chain else { return canonical.unparsed += 1 }
                canonical.chains[NftnlKind.chain.getString(chain, attribute(NFTNL_CHAIN_NAME))] = CanonicalTable.chainHeader(chain)
            }
        }
        if complete {
            complete = try dump(.rule, table: table, observation: &observation) { rule in
                guard let rule else { return canonical.unparsed += 1 }
                canonical.rules[NftnlKind.rule.getString(rule, attribute(NFTNL_RULE_CHAIN)), default: []].append(CanonicalTable.ruleText(rule))
            }
        }
        return (canonical, complete && !observation.interrupted && observation.generationTags.count <= 1)
    }
}
