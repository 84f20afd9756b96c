import Glibc
import Testing
import TailgateTestSupport
@testable import TailgateConfig
@testable import TailgateFirewall

/// Real packets: a host namespace with the table and an interface named tailscale0, and a peer
/// namespace on the other end of that veth, with a tailnet address (100.64.0.2) and an outside one
/// (192.0.2.2). Every wait is bounded.
@Suite(.enabled(if: Privileges.namespaceTestsEnabled, Comment(rawValue: Privileges.requirement)))
struct FirewallTrafficTests {
    static let configuration = FirewallConfiguration(tcpPorts: [.init(5432)], udpPorts: [.init(9000)])

    @Test func tailnetSourcesPassAndOthersAreDroppedAndCountedPerPort() async throws {
        let (host, peer) = try Self.makePair()
        defer {
            host.remove()
            peer.remove()
        }
        let ruleset = FirewallRuleset(Self.configuration)
        let listener = try await host.perform { Probe.listen(port: 5432) }
        defer { close(listener) }
        try #require(listener >= 0)
        try await host.perform { try NetlinkFirewall().apply(ruleset) }
        #expect(try await host.perform { try NetlinkFirewall().counters(ruleset) }?.dropped == CounterValue())

        let outcomes = try await peer.perform {
            [
                Probe.connect(from: "100.64.0.2", to: "100.64.0.1", port: 5432, milliseconds: 3_000),
                Probe.connect(from: "192.0.2.2", to: "192.0.2.1", port: 5432, milliseconds: 500),
            ]
        }
        #expect(outcomes == [.connected, .timedOut])
        #expect(try await peer.perform { Probe.sendDatagram(from: "192.0.2.2", to: "192.0.2.1", port: 9000) })

        let counters = try await Self.waitForCounters(host, ruleset) { $0.perPort["dropped_udp_9000"]?.packets ?? 0 >= 1 }
        #expect(counters.allowed.packets >= 1)
        #expect(counters.perPort["dropped_tcp_5432"]?.packets ?? 0 >= 1)
        #expect(counters.perPort["dropped_udp_9000"]?.packets == 1)
        let perPortTotal = counters.perPort.values.reduce(0) { $0 + $1.packets }
        #expect(counters.dropped.packets == perPortTotal, "the catch-all counter stays at zero")
    }

    /// A broadcast (or multicast) datagram is delivered to this host's sockets like a unicast one, so it is
    /// judged like one: from outside the tailnet, dropped and counted.
    @Test func broadcastsToAGuardedPortAreJudgedLikeUnicast() async throws {
        let (host, peer) = try Self.makePair()
        defer {
            host.remove()
            peer.remove()
        }
        let ruleset = FirewallRuleset(Self.configuration)
        try await host.perform { try NetlinkFirewall().apply(ruleset) }
        #expect(try await peer.perform { Probe.sendBroadcast(from: "192.0.2.2", to: "192.0.2.255", port: 9000) })
        #expect(try await peer.perform { Probe.sendBroadcast(from: "192.0.2.2", to: "255.255.255.255", port: 9000) })
        let counters = try await Self.waitForCounters(host, ruleset) { $0.perPort["dropped_udp_9000"]?.packets ?? 0 >= 2 }
        #expect(counters.perPort["dropped_udp_9000"]?.packets == 2)
    }

    @Test func rejectAnswersAtOnceInsteadOfDropping() async throws {
        let (host, peer) = try Self.makePair()
        defer {
            host.remove()
            peer.remove()
        }
        var configuration = Self.configuration
        configuration.action = .reject
        let ruleset = FirewallRuleset(configuration)
        let listener = try await host.perform { Probe.listen(port: 5432) }
        defer { close(listener) }
        try #require(listener >= 0)
        try await host.perform { try NetlinkFirewall().apply(ruleset) }
        let outcomes = try await peer.perform {
            [
                Probe.connect(from: "192.0.2.2", to: "192.0.2.1", port: 5432, milliseconds: 3_000),
                Probe.connect(from: "100.64.0.2", to: "100.64.0.1", port: 5432, milliseconds: 3_000),
            ]
        }
        #expect(outcomes == [.refused, .connected])
        #expect(try await peer.perform { Probe.datagramIsRefused(from: "192.0.2.2", to: "192.0.2.1", port: 9000, milliseconds: 3_000) })
        let counters = try await Self.waitForCounters(host, ruleset) { $0.perPort["dropped_udp_9000"]?.packets ?? 0 >= 1 }
        #expect(counters.perPort["dropped_tcp_5432"]?.packets ?? 0 >= 1)
        #expect(counters.dropped.packets >= 2)
    }

    /// Two namespaces joined by a veth: host side `tailscale0` (100.64.0.1/24, 192.0.2.1/24),
    /// peer side `peer0` (100.64.0.2/24, 192.0.2.2/24).
    static func makePair() throws -> (NetworkNamespace, NetworkNamespace) {
        let host = try NetworkNamespace("host")
        let peer: NetworkNamespace
        do {
            peer = try NetworkNamespace("peer")
        } catch {
            host.remove()
            throw error
        }
        do {
            let temporary = "tgv\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
            try Command.check("ip", [
                "link", "add", temporary + "a", "netns", host.name, "type", "veth", "peer", "name", temporary + "b", "netns", peer.name,
            ])
            try host.check(["ip", "link", "set", temporary + "a", "name", "tailscale0"])
            try peer.check(["ip", "link", "set", temporary + "b", "name", "peer0"])
            for (namespace, interface, suffix) in [(host, "tailscale0", "1"), (peer, "peer0", "2")] {
                try namespace.check(["ip", "addr", "add", "100.64.0.\(suffix)/24", "dev", interface])
                try namespace.check(["ip", "addr", "add", "192.0.2.\(suffix)/24", "dev", interface])
                try namespace.check(["ip", "link", "set", interface, "up"])
            }
        } catch {
            host.remove()
            peer.remove()
            throw error
        }
        return (host, peer)
    }

    /// Reads the counters until `done` holds, for at most five seconds.
    static func waitForCounters(
        _ host: NetworkNamespace, _ ruleset: FirewallRuleset, until done: @escaping @Sendable (FirewallCounters) -> Bool
    ) async throws -> FirewallCounters {
        var counters: FirewallCounters?
        _ = try await Poll.until(timeout: 5) {
            let read = try #require(try await host.perform { try NetlinkFirewall().counters(ruleset) })
            counters = read
            return done(read)
        }
        return try #require(counters)
    }
}
