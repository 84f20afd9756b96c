import NIOCore
import Testing

@testable import TailgateProxy

/// What the status page reads of a listener's endings: counts by outcome, and the last few bad ones.
@Suite struct ListenerTallyTests {
    @Test func endingsAreCountedAndTheLastBadOnesKeptNewestFirst() throws {
        let tally = ListenerTally()
        for _ in 0..<3 { tally.ended(.closed, logged: true, client: try SocketAddress(ipAddress: "192.0.2.1", port: 1), serverName: "a.example", reason: nil) }
        tally.ended(.redirected, logged: true, client: try SocketAddress(ipAddress: "192.0.2.1", port: 2), serverName: "a.example", reason: nil)
        for index in 0..<(ListenerTally.recentLimit + 3) {
            tally.ended(.badClientHello, logged: true, client: try SocketAddress(ipAddress: "192.0.2.9", port: index), serverName: nil, reason: "not_tls")
        }
        // A refusal logged only at debug level is counted and not shown.
        tally.ended(.overSourceLimit, logged: false, client: try SocketAddress(ipAddress: "192.0.2.7", port: 1), serverName: nil, reason: "rate")
        #expect(tally.outcomes == [.closed: 3, .redirected: 1, .badClientHello: ListenerTally.recentLimit + 3, .overSourceLimit: 1])
        let recent = tally.recentEnds
        #expect(recent.count == ListenerTally.recentLimit)
        #expect(recent.map(\.client) == (3..<(ListenerTally.recentLimit + 3)).reversed().map { "192.0.2.9:\($0)" })
        #expect(recent.allSatisfy { $0.outcome == .badClientHello && $0.reason == "not_tls" })
    }

    @Test func aClientsServerNameIsKeptNoLongerThanAHostName() throws {
        let tally = ListenerTally()
        tally.ended(.noRoute, logged: true, client: try SocketAddress(ipAddress: "192.0.2.1", port: 1), serverName: String(repeating: "a", count: 5_000), reason: nil)
        #expect(tally.recentEnds.first?.serverName?.count == 255)
    }
}
