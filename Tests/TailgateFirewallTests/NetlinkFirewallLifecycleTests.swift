import Testing
@testable import TailgateConfig
@testable import TailgateFirewall

/// Generation, drift detection and removal against the real kernel, each test in its own namespace.
@Suite(.enabled(if: Privileges.namespaceTestsEnabled, Comment(rawValue: Privileges.requirement)))
struct NetlinkFirewallLifecycleTests {
    let ruleset = FirewallRuleset(Configurations.example)

    @Test func applyingTwiceStaysInSyncAndMovesTheGeneration() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = ruleset
        let (generations, drift) = try await namespace.perform { () throws -> ([UInt32], FirewallDrift) in
            let firewall = NetlinkFirewall()
            var generations = [try firewall.generation()]
            try firewall.apply(ruleset)
            generations.append(try firewall.generation())
            try firewall.apply(ruleset)
            generations.append(try firewall.generation())
            generations.append(try firewall.generation())
            return (generations, try firewall.verify(ruleset))
        }
        #expect(generations[1] != generations[0])
        #expect(generations[2] != generations[1])
        #expect(generations[3] == generations[2], "reading the generation does not change it")
        #expect(drift == .inSync)
        #expect(try namespace.check(["nft", "list", "table", "inet", "tailgate"]) == ruleset.nftText)
    }

    @Test func anElementAddedByHandIsDrift() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = ruleset
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        let before = try await namespace.perform { try NetlinkFirewall().generation() }
        try namespace.check(["nft", "add", "element", "inet", "tailgate", "tcp_ports", "{ 1234 }"])
        let after = try await namespace.perform { try NetlinkFirewall().generation() }
        #expect(after != before)
        let drift = try await namespace.perform { try NetlinkFirewall().verify(ruleset) }
        #expect(drift == .differs(["set tcp_ports: elements differ (1 unexpected, 0 missing)"]))
        // Re-applying repairs it.
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        #expect(try await namespace.perform { try NetlinkFirewall().verify(ruleset) } == .inSync)
    }

    @Test func aRuleDeletedByHandIsDrift() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = ruleset
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        let listing = try namespace.check(["nft", "-a", "list", "chain", "inet", "tailgate", "guard"])
        let line = try #require(listing.split(separator: "\n").first { $0.contains("ct direction reply accept") })
        let handle = try #require(line.split(separator: " ").last.map(String.init))
        try namespace.check(["nft", "delete", "rule", "inet", "tailgate", "guard", "handle", handle])
        let drift = try await namespace.perform { try NetlinkFirewall().verify(ruleset) }
        #expect(drift == .differs(["chain guard: 8 rules, expected 9", "chain guard: rule 3 differs (expected: ct direction reply accept)"]))
    }

    @Test func aTableSwitchedToDormantIsDrift() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = ruleset
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        try namespace.check(["nft", "add", "table", "inet", "tailgate", "{ flags dormant; }"])
        let drift = try await namespace.perform { try NetlinkFirewall().verify(ruleset) }
        #expect(drift == .differs(["table flags 0x1, expected 0x0 (dormant: the table filters nothing)"]))
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        #expect(try await namespace.perform { try NetlinkFirewall().verify(ruleset) } == .inSync)
    }

    @Test func aFlushedRulesetIsAMissingTable() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = ruleset
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        try namespace.check(["nft", "flush", "ruleset"])
        let (drift, exists, counters) = try await namespace.perform { () throws in
            let firewall = NetlinkFirewall()
            return (try firewall.verify(ruleset), try firewall.tableExists(), try firewall.counters(ruleset))
        }
        #expect(drift == .missing)
        #expect(!exists)
        #expect(counters == nil)
    }

    @Test func removeDeletesTheTableAndCanBeRepeated() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = ruleset
        let (existedBefore, existsAfter) = try await namespace.perform { () throws in
            let firewall = NetlinkFirewall()
            try firewall.remove()  // nothing there yet: no error either
            try firewall.apply(ruleset)
            let existed = try firewall.tableExists()
            try firewall.remove()
            try firewall.remove()
            return (existed, try firewall.tableExists())
        }
        #expect(existedBefore)
        #expect(!existsAfter)
        #expect(try namespace.check(["nft", "list", "tables"]) == "")
    }

    @Test func freshCountersReadZeroAndOnlyTheTablesOwnCountersCount() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = ruleset
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        // A counter of the same name in another table is not ours.
        try namespace.check(["nft", "add", "table", "inet", "other"])
        try namespace.check(["nft", "add", "counter", "inet", "other", "dropped", "{ packets 7 bytes 700 }"])
        let counters = try await namespace.perform { try NetlinkFirewall().counters(ruleset) }
        let zero = CounterValue()
        #expect(counters == FirewallCounters(
            allowed: zero, dropped: zero, perPort: ["dropped_tcp_5432": zero, "dropped_tcp_6379": zero, "dropped_udp_9000": zero]
        ))
    }
}
