import CNftables
import Glibc

extension NetlinkSocket {
    /// GETTABLE by name, with an acknowledgement: ENOENT means there is no such table.
    func tableExists(_ table: String) throws(FirewallError) -> Bool {
        try tableFlags(table) != nil
    }

    /// The table's flags (NFT_TABLE_F_DORMANT, …), or nil when there is no such table.
    func tableFlags(_ table: String) throws(FirewallError) -> UInt32? {
        let object = try NftnlObjects.table(table)
        defer { nftnl_table_free(object) }
        let request = Self.getRequest(NFT_MSG_GETTABLE, flags: NLM_F_ACK, sequence: reserveSequences(1)) {
            nftnl_table_nlmsg_build_payload($0, object)
        }
        var flags: UInt32 = 0
        let outcome = try self.request(request) { reply in
            guard let header = reply.header, let parsed = nftnl_table_alloc() else { return }
            defer { nftnl_table_free(parsed) }
            if nftnl_table_nlmsg_parse(header, parsed) == 0 { flags = nftnl_table_get_u32(parsed, attribute(NFTNL_TABLE_FLAGS)) }
        }
        return outcome == .done ? flags : nil
    }

    /// Counter name → value for the table's named counters; nil when the table is missing.
    func counterValues(_ table: String) throws(FirewallError) -> [String: CounterValue]? {
        var values: [String: CounterValue] = [:]
        var observation = DumpObservation()
        let complete = try dump(.object, table: table, observation: &observation, filter: {
            nftnl_obj_set_u32($0, attribute(NFTNL_OBJ_TYPE), UInt32(NFT_OBJECT_COUNTER))
        }) { object in
            guard let object else { return }
            values[NftnlKind.object.getString(object, attribute(NFTNL_OBJ_NAME))] = CounterValue(
                packets: nftnl_obj_get_u64(object, attribute(NFTNL_OBJ_CTR_PKTS)),
                bytes: nftnl_obj_get_u64(object, attribute(NFTNL_OBJ_CTR_BYTES))
            )
        }
        return complete ? values : nil
    }

    /// A dump of one object kind, filtered by table in the request and again on every reply; `body`
    /// gets each parsed object (nil when libnftnl cannot parse it). False when the kernel said ENOENT.
    func dump(
        _ kind: NftnlKind, table: String, observation: inout DumpObservation,
        filter: (OpaquePointer) -> Void = { _ in }, _ body: (OpaquePointer?) -> Void
    ) throws(FirewallError) -> Bool {
        guard let request = kind.allocate() else { throw NftnlObjects.outOfMemory("nftnl_*_alloc") }
        defer { kind.free(request) }
        kind.setString(request, kind.tableAttribute, table)
        filter(request)
        let message = Self.getRequest(kind.dumpType, flags: NLM_F_DUMP, sequence: reserveSequences(1)) { kind.buildPayload($0, request) }
        return try self.request(message, observation: &observation) { (reply) throws(FirewallError) in
            guard let header = reply.header, let object = kind.allocate() else { throw NftnlObjects.outOfMemory("nftnl_*_alloc") }
            defer { kind.free(object) }
            guard kind.parse(header, object) == 0 else { return body(nil) }
            if kind.getString(object, kind.tableAttribute) == table { body(object) }
        } == .done
    }

    /// The sorted canonical elements of one set (GETSETELEM dump); nil when the set is gone.
    func setElements(_ table: String, set name: String, observation: inout DumpObservation) throws(FirewallError) -> [String]? {
        guard let set = nftnl_set_alloc() else { throw NftnlObjects.outOfMemory("nftnl_set_alloc") }
        defer { nftnl_set_free(set) }
        _ = nftnl_set_set_str(set, attribute(NFTNL_SET_TABLE), table)
        _ = nftnl_set_set_str(set, attribute(NFTNL_SET_NAME), name)
        let message = Self.getRequest(NFT_MSG_GETSETELEM, flags: NLM_F_DUMP, sequence: reserveSequences(1)) {
            nftnl_set_elems_nlmsg_build_payload($0, set)
        }
        let outcome = try request(message, observation: &observation) { reply in
            if let header = reply.header { _ = nftnl_set_elems_nlmsg_parse(header, set) }
        }
        return outcome == .done ? CanonicalTable.elements(of: set) : nil
    }
}
