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
}
