import Glibc
import Testing
import TailgateTestSupport
@testable import TailgateConfig
@testable import TailgateFirewall

/// The ban sets with real packets (the host and peer namespaces of `FirewallTrafficTests`): a banned source
/// is dropped on a shielded port before anything else, single addresses and prefixes, with timeouts; bans
/// survive a reapply and a drift repair with the time they had left; removing one lets the source back in.
@Suite(.enabled(if: Privileges.namespaceTestsEnabled, Comment(rawValue: Privileges.requirement)))
struct BanSetTests {
    static let ruleset = FirewallRuleset(FirewallConfiguration(), shield: ShieldPorts(tcp: [.init(8443)]))

    static func network(_ text: String) -> IPNetwork { try! IPNetwork.parse(text) }

    static func connects(_ peer: NetworkNamespace, from source: String, to destination: String) async throws -> Bool {
        try await peer.perform { Probe.connect(from: source, to: destination, port: 8443, milliseconds: 1_500) } == .connected
    }

    /// The namespace pair, a listener on the shielded port in the host, and the table applied there.
    static func shieldedHost() async throws -> (host: NetworkNamespace, peer: NetworkNamespace, listener: Int32) {
        let (host, peer) = try FirewallTrafficTests.makePair()
        do {
            let listener = try await host.perform { Probe.listen(port: 8443) }
            try #require(listener >= 0)
            try await host.perform { try NetlinkFirewall().apply(Self.ruleset) }
            return (host, peer, listener)
        } catch {
            host.remove()
            peer.remove()
            throw error
        }
    }

    @Test func bannedSourcesAreDroppedAndTheBansOutliveReappliesAndRepairs() async throws {
        let (host, peer, listener) = try await Self.shieldedHost()
        defer {
            close(listener)
            host.remove()
            peer.remove()
        }
        #expect(try await Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1"), "nobody is banned yet")

        let bans = [
            BanEntry(network: Self.network("192.0.2.2"), timeout: .seconds(3_600), comment: "fail2ban: sshd \"x\""),
            BanEntry(network: Self.network("100.64.0.0/24"), timeout: .seconds(600)),
            BanEntry(network: Self.network("2001:db8:1::/48"), timeout: .seconds(3_600)),
        ]
        try await host.perform { try NetlinkFirewall().addBans(bans) }
        #expect(try await !Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1"), "a banned address")
        #expect(try await !Self.connects(peer, from: "100.64.0.2", to: "100.64.0.1"), "an address in a banned prefix")
        let listed = try #require(try await host.perform { try NetlinkFirewall().bans() })
        #expect(Set(listed.map(\.network)) == Set(bans.map(\.network)), "\(listed)")
        let address = try #require(listed.first { $0.network == Self.network("192.0.2.2") })
        #expect(address.timeout == .seconds(3_600) && (address.expires ?? .zero) > .seconds(3_500), "\(address)")
        #expect(address.comment == "fail2ban: sshd _x_")
        #expect(try host.check(["nft", "list", "set", "inet", "tailgate", "ban4"]).contains("192.0.2.2 timeout 1h expires"))
        #expect(try host.check(["nft", "list", "set", "inet", "tailgate", "ban4"]).contains("comment \"fail2ban: sshd _x_\""))
        let nftText = try host.check(["nft", "list", "set", "inet", "tailgate", "ban4_net"])
        #expect(nftText.contains("100.64.0.0/24 timeout 10m expires"), "\(nftText)")

        // A reapply (a reload, a restart) keeps every ban with the time it had left.
        let kept = try await host.perform { try NetlinkFirewall().apply(Self.ruleset) }
        #expect(kept == 3)
        #expect(try await host.perform { try NetlinkFirewall().bans() }?.first { $0.network == Self.network("192.0.2.2") }?.comment == "fail2ban: sshd _x_")
        #expect(try await !Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1"))
        // Someone flushes the shield chain: drift, and the repair (an apply) keeps the bans too.
        _ = try host.check(["nft", "flush", "chain", "inet", "tailgate", "shield"])
        #expect(try await Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1"), "the flushed chain drops nothing")
        let drift = try await host.perform { try NetlinkFirewall().verify(Self.ruleset) }
        #expect(drift != .inSync)
        #expect(try await host.perform { try NetlinkFirewall().apply(Self.ruleset) } == 3)
        #expect(try await host.perform { try NetlinkFirewall().verify(Self.ruleset) } == .inSync, "elements of the ban sets are not drift")
        #expect(try await !Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1"))
        let counter = try host.check(["nft", "list", "counter", "inet", "tailgate", "banned"])
        #expect(!counter.contains("packets 0 "), "the shield counted what it dropped: \(counter)")

        // Lifted: the source is back; lifting it again says it was not there.
        #expect(try await host.perform { try NetlinkFirewall().removeBan(Self.network("192.0.2.2")) })
        #expect(try await Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1"))
        #expect(try await !host.perform { try NetlinkFirewall().removeBan(Self.network("192.0.2.2")) })
        #expect(try await host.perform { try NetlinkFirewall().removeBan(Self.network("100.64.0.0/24")) })
        #expect(try await Self.connects(peer, from: "100.64.0.2", to: "100.64.0.1"))
        #expect(try await host.perform { try NetlinkFirewall().bans() }?.map(\.network) == [Self.network("2001:db8:1::/48")])
    }

    @Test func aBanExpiresByItselfAndTrustedInterfacesAreNeverJudged() async throws {
        let (host, peer, listener) = try await Self.shieldedHost()
        defer {
            close(listener)
            host.remove()
            peer.remove()
        }
        try await host.perform {
            try NetlinkFirewall().addBans([
                BanEntry(network: Self.network("192.0.2.2"), timeout: .seconds(2)),
                BanEntry(network: Self.network("127.0.0.1"), timeout: .seconds(60)),
            ])
        }
        #expect(try await !Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1"))
        #expect(try await host.perform { Probe.connect(from: "127.0.0.1", to: "127.0.0.1", port: 8443, milliseconds: 1_500) } == .connected,
                "lo is a trusted interface")
        #expect(try await Poll.until(timeout: 10) { try await Self.connects(peer, from: "192.0.2.2", to: "192.0.2.1") }, "expired")
        #expect(try await host.perform { try NetlinkFirewall().bans() }?.map(\.network) == [Self.network("127.0.0.1")])
    }
}
