import Glibc
import Testing
@testable import TailgateConfig
@testable import TailgateFirewall

/// Batches the kernel refuses, and a caller without CAP_NET_ADMIN.
@Suite(.enabled(if: Privileges.namespaceTestsEnabled, Comment(rawValue: Privileges.requirement)))
struct NetlinkFirewallFailureTests {
    @Test(arguments: [
        // An interface name of 16 bytes or more (validation normally refuses it) is not truncated.
        (FirewallConfiguration(trustedInterfaces: ["lo", "a-very-long-interface"], tcpPorts: [.init(5432)]), "add elements to set trusted_ifaces"),
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

/// The error `operation` throws, or nil when it succeeds.
func firewallError(_ operation: () throws(FirewallError) -> Void) -> FirewallError? {
    do {
        try operation()
        return nil
    } catch {
        return error
    }
}

/// Drops CAP_NET_ADMIN from the calling thread only (capset(2) is per thread; glibc exports it
/// without a header, so it is looked up with dlsym).
enum Capabilities {
    private struct Header {
        var version: UInt32 = 0x2008_0522  // _LINUX_CAPABILITY_VERSION_3
        var pid: Int32 = 0
    }

    private struct Data {
        var effective: UInt32 = 0
        var permitted: UInt32 = 0
        var inheritable: UInt32 = 0
    }

    static func dropNetAdminFromThisThread() throws {
        typealias Call = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
        guard let get = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "capget"),
              let set = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "capset") else {
            throw Command.Failure(description: "capget/capset not found in libc")
        }
        var header = Header()
        var data = [Data(), Data()]
        guard unsafeBitCast(get, to: Call.self)(&header, &data) == 0 else { throw Command.Failure(description: "capget: errno \(errno)") }
        let netAdmin: UInt32 = 1 << 12
        data[0].effective &= ~netAdmin
        data[0].permitted &= ~netAdmin
        guard unsafeBitCast(set, to: Call.self)(&header, &data) == 0 else { throw Command.Failure(description: "capset: errno \(errno)") }
    }
}
