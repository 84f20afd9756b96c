import Testing
@testable import TailgateConfig
@testable import TailgateFirewall

/// NetlinkFirewall against the real kernel, each test in its own network namespace.
@Suite(.enabled(if: Privileges.namespaceTestsEnabled, Comment(rawValue: Privileges.requirement)))
struct NetlinkFirewallTests {
    @Test(arguments: [("example", Configurations.example), ("wide", Configurations.wide), ("sparse", Configurations.sparse)])
    func theKernelListsTheAppliedTableExactlyAsPlanned(name: String, configuration: FirewallConfiguration) async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = FirewallRuleset(configuration)
        try await namespace.perform { try NetlinkFirewall().apply(ruleset) }
        let listed = try namespace.check(["nft", "list", "table", "inet", "tailgate"])
        #expect(listed == ruleset.nftText, "\(name)")
        let drift = try await namespace.perform { try NetlinkFirewall().verify(ruleset) }
        #expect(drift == .inSync, "\(name)")
    }

    /// 3,000 IPv6 hosts (6,000 interval elements, several NEWSETELEM messages) and 600 ports (600
    /// counters and rules): a batch of about 440 KiB and 1,800 acknowledgements.
    @Test func aLargeRulesetIsSplitIntoMessagesButStillOneBatch() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let hosts = (0..<3_000).compactMap { try? IPNetwork.parse("fd00::\(String($0 * 2, radix: 16))") }
        let ports = (0..<600).map { FirewallConfiguration.PortRange(UInt16(10_000 + $0 * 2)) }
        let ruleset = FirewallRuleset(FirewallConfiguration(allow: FirewallConfiguration.tailnetPrefixes + hosts, tcpPorts: ports))
        let batch = try NetlinkBatch.replacing(with: ruleset, beginSequence: 1)
        #expect(batch.descriptions.values.filter { $0.hasPrefix("add elements to set tailnet6") }.count > 1)
        #expect(batch.bytes.count > 256 * 1024, "past the default socket buffer of 208 KiB")
        let (drift, generationBefore, generationAfter) = try await namespace.perform { () throws -> (FirewallDrift, UInt32, UInt32) in
            let firewall = NetlinkFirewall()
            let before = try firewall.generation()
            try firewall.apply(ruleset)
            return (try firewall.verify(ruleset), before, try firewall.generation())
        }
        #expect(drift == .inSync)
        #expect(generationAfter == generationBefore &+ 1, "one batch is one commit")
        #expect(try namespace.check(["nft", "list", "table", "inet", "tailgate"]) == ruleset.nftText)
    }
}
