import CNftables
import Testing
@testable import TailgateConfig
@testable import TailgateFirewall

/// Batches the kernel refuses, and a caller without CAP_NET_ADMIN.
@Suite(.enabled(if: Privileges.namespaceTestsEnabled, Comment(rawValue: Privileges.requirement)))
struct NetlinkFirewallFailureTests {
    @Test(arguments: [
        // An interface name of 16 bytes or more (validation normally refuses it) is not truncated.
        (
            FirewallConfiguration(trustedInterfaces: ["lo", "a-very-long-interface"], tcpPorts: [.init(5432)]),
            "add elements to set trusted_ifaces"
        ),
        // The same port twice (validation normally refuses it): its counter already exists.
        (FirewallConfiguration(tcpPorts: [.init(5432), .init(5432)]), "add counter dropped_tcp_5432"),
    ])
    func aRefusedBatchLeavesTheOldTableIntact(bad: FirewallConfiguration, failingMessage: String) async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let good = FirewallRuleset(Configurations.example)
        try await namespace.perform { try NetlinkFirewall().apply(good) }
        let generation = try await namespace.perform { try NetlinkFirewall().generation() }
        let failure = try await namespace.perform {
            firewallError { () throws(FirewallError) in try NetlinkFirewall().apply(FirewallRuleset(bad)) }
        }
        guard case .rejected(let details)? = failure else {
            Issue.record("expected .rejected, got \(String(describing: failure))")
            return
        }
        #expect(details.contains(failingMessage), "\(details)")
        #expect(failure?.description.hasPrefix("the kernel refused the firewall batch, nothing was changed: applying table inet tailgate: message ") == true)
        #expect(try namespace.check(["nft", "list", "table", "inet", "tailgate"]) == good.nftText)
        #expect(try await namespace.perform { try NetlinkFirewall().generation() } == generation)
        #expect(try await namespace.perform { try NetlinkFirewall().verify(good) } == .inSync)
    }

    @Test func aTableOwnedByAnotherSocketIsRefusedWithAHint() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = FirewallRuleset(Configurations.example)
        let failure = try await namespace.perform { () throws -> FirewallError? in
            // Another process's table of the same name with NFT_TABLE_F_OWNER, held while we apply.
            let owner = try NetlinkSocket(operation: "owning table inet tailgate")
            let table = try NftnlObjects.table("tailgate")
            defer { nftnl_table_free(table) }
            nftnl_table_set_u32(table, attribute(NFTNL_TABLE_FLAGS), NFT_TABLE_F_OWNER.rawValue)
            var batch = NetlinkBatch(beginSequence: owner.reserveSequences(3))
            batch.append(NFT_MSG_NEWTABLE, flags: NLM_F_CREATE, "own the table") { nftnl_table_nlmsg_build_payload($0, table) }
            batch.finish()
            try owner.commit(batch)
            return withExtendedLifetime(owner) {
                firewallError { () throws(FirewallError) in try NetlinkFirewall().apply(ruleset) }
            }
        }
        guard case .rejected(let details)? = failure else {
            Issue.record("expected .rejected, got \(String(describing: failure))")
            return
        }
        #expect(details.contains("Operation not permitted; the table is owned by another process (NFT_TABLE_F_OWNER)"), "\(details)")
        // The owner's socket is closed now, and its table went with it.
        #expect(try await namespace.perform { try NetlinkFirewall().tableExists() } == false)
    }

    @Test func withoutCapNetAdminEveryOperationIsPermissionDenied() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let ruleset = FirewallRuleset(Configurations.example)
        let failures = try await namespace.perform { () throws -> [FirewallError?] in
            try Capabilities.dropNetAdminFromThisThread()
            let firewall = NetlinkFirewall()
            return [
                firewallError { () throws(FirewallError) in try firewall.apply(ruleset) },
                firewallError { () throws(FirewallError) in _ = try firewall.verify(ruleset) },
                firewallError { () throws(FirewallError) in _ = try firewall.generation() },
                firewallError { () throws(FirewallError) in try firewall.remove() },
            ]
        }
        for failure in failures {
            guard case .permissionDenied? = failure else {
                Issue.record("expected .permissionDenied, got \(String(describing: failure))")
                continue
            }
            #expect(failure?.description.contains("needs CAP_NET_ADMIN (run as root or grant the capability") == true)
        }
        #expect(failures.first??.description.hasPrefix("applying table inet tailgate: permission denied") == true)
        #expect(try await namespace.perform { try NetlinkFirewall().tableExists() } == false)
    }
}
