import CNftables
import Glibc

/// Talks to nf_tables in the calling thread's network namespace through libnftnl and libmnl (never
/// the `nft` command). Every operation opens its own netlink socket, is synchronous, and bounds each
/// wait for the kernel to five seconds.
public struct NetlinkFirewall: Sendable {
    /// A firewall handle; it holds no resources.
    public init() {}

    /// Replaces the whole table in one batch: NEWTABLE (create if missing), DELTABLE, NEWTABLE and the
    /// contents. On failure the kernel keeps the old table intact. Counters restart at zero; the bans in
    /// the ban sets are read first and written again in the same batch, each with the time it had left,
    /// so a reload, a restart or a drift repair never lifts one. Returns how many bans were kept.
    @discardableResult
    public func apply(_ ruleset: FirewallRuleset) throws(FirewallError) -> Int {
        let bans = (try? self.bans(tableName: ruleset.tableName)).flatMap { $0 } ?? []
        let socket = try NetlinkSocket(operation: "applying table inet \(ruleset.tableName)")
        let batch = try NetlinkBatch.replacing(with: ruleset, keeping: bans, beginSequence: socket.reserveSequences(100_000))
        try socket.commit(batch)
        return bans.count
    }

    /// Removes the table (NEWTABLE create + DELTABLE in one batch): idempotent, no error if it is absent.
    public func remove(tableName: String = "tailgate") throws(FirewallError) {
        let socket = try NetlinkSocket(operation: "removing table inet \(tableName)")
        try socket.commit(NetlinkBatch.removing(table: tableName, beginSequence: socket.reserveSequences(4)))
    }

    /// Whether the table exists in the `inet` family.
    public func tableExists(tableName: String = "tailgate") throws(FirewallError) -> Bool {
        let socket = try NetlinkSocket(operation: "looking up table inet \(tableName)")
        return try socket.tableExists(tableName)
    }

    /// The ruleset generation id (NFT_MSG_GETGEN). It changes on every commit in the network namespace,
    /// in any table, so an unchanged id means nothing can have drifted.
    public func generation() throws(FirewallError) -> UInt32 {
        let socket = try NetlinkSocket(operation: "reading the nf_tables generation")
        let request = NetlinkSocket.getRequest(NFT_MSG_GETGEN, family: AF_UNSPEC, flags: NLM_F_ACK, sequence: socket.reserveSequences(1))
        var generation: UInt32?
        _ = try socket.request(request) { reply in
            guard let header = reply.header, let parsed = nftnl_gen_alloc() else { return }
            defer { nftnl_gen_free(parsed) }
            if nftnl_gen_nlmsg_parse(header, parsed) == 0 { generation = nftnl_gen_get_u32(parsed, attribute(NFTNL_GEN_ID)) }
        }
        guard let generation else { throw .system(call: "reading the nf_tables generation: no NFTA_GEN_ID in the reply", errno: EPROTO) }
        return generation
    }

    /// Reads the table's named counters (GETOBJ dump); nil when the table is missing. A counter
    /// missing from the table reads as zero.
    public func counters(_ ruleset: FirewallRuleset) throws(FirewallError) -> FirewallCounters? {
        let socket = try NetlinkSocket(operation: "reading the counters of table inet \(ruleset.tableName)")
        guard try socket.tableExists(ruleset.tableName) else { return nil }
        guard let values = try socket.counterValues(ruleset.tableName) else { return nil }
        var counters = FirewallCounters(allowed: values["allowed"] ?? CounterValue(), dropped: values["dropped"] ?? CounterValue())
        counters.banned = values["banned"] ?? CounterValue()
        for port in ruleset.portCounters {
            let value = values[port.name] ?? CounterValue()
            counters.perPort[port.name] = value
            counters.dropped = counters.dropped + value
        }
        return counters
    }

    /// Dumps the table and compares it with `ruleset` canonically: object names and types, set keys,
    /// flags and elements, chain hooks, and each rule's expressions in order. Handles, counter values,
    /// set ids and userdata are ignored. A dump that races with a commit (replies from more than one
    /// ruleset generation) is repeated, up to five times.
    public func verify(_ ruleset: FirewallRuleset) throws(FirewallError) -> FirewallDrift {
        let desired = try CanonicalTable(desired: ruleset)
        let socket = try NetlinkSocket(operation: "reading table inet \(ruleset.tableName)")
        var live: CanonicalTable?
        for _ in 0..<5 {
            guard let dump = try socket.dumpTable(ruleset.tableName) else { return .missing }
            live = dump.table
            if dump.isConsistent { break }
        }
        guard let live else { return .missing }
        let differences = live.differences(from: desired)
        return differences.isEmpty ? .inSync : .differs(differences)
    }
}
