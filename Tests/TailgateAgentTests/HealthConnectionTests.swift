import NIOCore
import NIOEmbedded
import TailgateConfig
import Testing

@testable import TailgateAgent

/// The health endpoint's connection handling without sockets: the per-connection state machine fed at every
/// split point, and the table that decides who gives way when the endpoint is full.
@Suite struct HealthConnectionTests {
    typealias Machine = HealthConnectionStateMachine

    @Test func aHeadSplitAnywhereIsAnsweredOnceWhole() {
        let request = Array("GET /status?format=json HTTP/1.1\r\nHost: node\r\nAccept: Text/HTML, */*\r\n\r\n".utf8)
        for split in 1..<request.count {
            var machine = Machine()
            var first = ByteBuffer(bytes: request[..<split]), second = ByteBuffer(bytes: request[split...])
            guard case .none = machine.received(&first) else {
                Issue.record("answered after \(split) bytes")
                continue
            }
            guard case .answer(let head, let accept) = machine.received(&second) else {
                Issue.record("not answered when whole (split at \(split))")
                continue
            }
            #expect(head.target == "/status?format=json" && accept == "Text/HTML, */*")
            // Once answering, more input is dropped.
            var more = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")
            guard case .none = machine.received(&more) else { Issue.record("a second request was taken"); continue }
        }
    }

    @Test func badHeadsAreAnsweredWithTheirStatus() {
        func status(_ text: String) -> Int? {
            var machine = Machine()
            var bytes = ByteBuffer(string: text)
            guard case .send(let response) = machine.received(&bytes) else { return nil }
            return response.status
        }
        #expect(status("GET /healthz\r\n\r\n") == 400)  // HTTP/0.9
        #expect(status("GET /healthz HTTP/1.1\r\n\r\n") == 400)  // no Host
        #expect(status("\u{16}\u{03}\u{01}\u{02}\u{00}") == 400)  // a TLS ClientHello
        #expect(status("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: Machine.headLimit) + "\r\n\r\n") == 431)
    }

    @Test func aSlowHeadIsToldAndAnIdleConnectionClosed() {
        var started = Machine()
        var bytes = ByteBuffer(string: "GET /hea")
        _ = started.received(&bytes)
        guard case .send(let response) = started.headDeadlinePassed() else { Issue.record("a started head was not answered"); return }
        #expect(response.status == 408)

        var idle = Machine()
        guard case .close = idle.headDeadlinePassed() else { Issue.record("an idle connection was not closed"); return }
    }

    @Test func anAnsweredConnectionLingersUntilTheClientCloses() {
        var machine = Machine()
        var bytes = ByteBuffer(string: "POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n1234")
        guard case .answer = machine.received(&bytes) else { Issue.record("not answered"); return }
        guard case .none = machine.inputClosed() else { Issue.record("closed before the answer was written"); return }
        guard case .linger = machine.answerWritten() else { Issue.record("no linger"); return }
        guard case .none = machine.headDeadlinePassed() else { Issue.record("the head deadline cut a lingering close"); return }
        var body = ByteBuffer(string: "56789")
        guard case .none = machine.received(&body) else { Issue.record("the body was not dropped"); return }
        guard case .close = machine.inputClosed() else { Issue.record("not closed at the client's end"); return }
    }

    @Test func aSourceOverItsCapLosesItsOwnOldestIdleConnection() throws {
        let table = HealthConnectionTable(limit: 8, perSource: 2)
        let attacker = HealthConnectionTable.source(of: try SocketAddress(ipAddress: "100.64.0.9", port: 1))!
        let monitor = HealthConnectionTable.source(of: try SocketAddress(ipAddress: "100.64.0.1", port: 1))!
        let first = EmbeddedChannel(), second = EmbeddedChannel(), third = EmbeddedChannel(), probe = EmbeddedChannel()
        for channel in [first, second] {
            guard case .admitted(let evicting) = table.admit(channel, source: attacker), evicting.isEmpty else { Issue.record("not admitted"); return }
        }
        guard case .admitted(let evicting) = table.admit(third, source: attacker) else { Issue.record("refused"); return }
        #expect(evicting.count == 1 && evicting.first?.channel === first && evicting.first?.setAside == true)
        guard case .admitted(let none) = table.admit(probe, source: monitor), none.isEmpty else { Issue.record("the monitor paid for the attacker"); return }
        #expect(table.count == 3)
    }

    @Test func aFullTableEvictsTheOldestIdleAndNeverOneAnswering() throws {
        let table = HealthConnectionTable(limit: 3, perSource: 3)
        func source(_ last: Int) throws -> SourceKey {
            HealthConnectionTable.source(of: try SocketAddress(ipAddress: "192.0.2.\(last)", port: 1))!
        }
        let channels = (0..<3).map { _ in EmbeddedChannel() }
        for (index, channel) in channels.enumerated() { _ = table.admit(channel, source: try source(index)) }
        table.mark(channels[0], .busy)
        table.mark(channels[1], .answered)
        // One waiting for its head gives way first (set aside), though an answered one is older.
        let newcomer = EmbeddedChannel()
        guard case .admitted(let evicting) = table.admit(newcomer, source: try source(9)) else { Issue.record("refused"); return }
        #expect(evicting.count == 1 && evicting.first?.channel === channels[2] && evicting.first?.setAside == true)
        // Then the answered one (closed at once), never the busy one.
        table.mark(newcomer, .busy)
        let second = EmbeddedChannel()
        guard case .admitted(let next) = table.admit(second, source: try source(10)) else { Issue.record("refused"); return }
        #expect(next.count == 1 && next.first?.channel === channels[1] && next.first?.setAside == false)
        table.mark(second, .busy)
        guard case .refused = table.admit(EmbeddedChannel(), source: try source(11)) else { Issue.record("evicted a busy connection"); return }
        #expect(table.counts == (evictions: 2, refusals: 1))
        table.remove(channels[0])
        #expect(table.count == 2)
    }

    @Test func sourcesAreAddressesAndIPv6Slash64s() throws {
        func Key(_ address: SocketAddress) -> SourceKey? { HealthConnectionTable.source(of: address) }
        #expect(Key(try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1)) == Key(try SocketAddress(ipAddress: "2001:db8:1:2:ffff::9", port: 2)))
        #expect(Key(try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1)) != Key(try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1)))
        #expect(Key(try SocketAddress(ipAddress: "::ffff:192.0.2.1", port: 1)) == Key(try SocketAddress(ipAddress: "192.0.2.1", port: 9)))
        #expect(Key(try SocketAddress(ipAddress: "192.0.2.1", port: 1)) != Key(try SocketAddress(ipAddress: "192.0.2.2", port: 1)))
    }

    @Test func thePageEscapesWhatClientsSent() {
        #expect(StatusPage.escape("<script>alert('x')</script>&\"") == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;")
        #expect(StatusPage.escape("a\u{1}b") == "a\u{FFFD}b")
        #expect(StatusReport.rounded(0.30000000000000004) == "0.3" && StatusReport.rounded(12.345) == "12.35" && StatusReport.rounded(2) == "2")
        #expect(StatusReport.rounded(1.05) == "1.05" && StatusReport.rounded(0.004) == "0")
        #expect(StatusPage.bytes(1_740) == "1.7 KiB" && StatusPage.bytes(12) == "12 B" && StatusPage.duration(3_725) == "1h 2m")
    }

    @Test func theScriptHashIsTheScriptsSHA256InBase64() {
        #expect(StatusPageAssets.base64(Array("any carnal pleas".utf8)) == "YW55IGNhcm5hbCBwbGVhcw==")
        #expect(StatusPageAssets.base64(Array("any carnal pleasu".utf8)) == "YW55IGNhcm5hbCBwbGVhc3U=")
        #expect(StatusPageAssets.base64(Array("any carnal pleasur".utf8)) == "YW55IGNhcm5hbCBwbGVhc3Vy")
        #expect(StatusPageAssets.scriptHash.hasPrefix("sha256-") && StatusPageAssets.scriptHash.count == 7 + 44)
    }
}
