import Foundation
import TailgateTestSupport
import Testing

/// `max_connections_per_source` and `connection_rate_per_source` with real clients from distinct loopback
/// addresses, directly and through a trusted PROXY hop (where the header's source is judged, per /64 for
/// IPv6, and the hop itself never is).
@Suite(.serialized) struct SourceLimitsIntegrationTests {
    /// The plain nginx's answer to `path` through `port`, asked from `source` (empty when the connection was closed).
    static func ask(_ port: Int, from source: String, path: String) -> String {
        Command.run("/usr/bin/curl", ["-s", "--max-time", "10", "--interface", source, "-H", "Host: a.example", "http://127.0.0.1:\(port)\(path)"]).output
    }

    @Test func aSourceOverItsLimitsIsClosedAtOnceAndOtherSourcesAreNot() throws {
        let sandbox = try Sandbox("source-limits")
        defer { sandbox.tearDown() }
        let home = try HTTPListenerTests.PlainNginx.start("home", in: sandbox)
        let port = TestPort.free(), ratePort = TestPort.free(), health = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [health]
            listen = "127.0.0.1:\(health)"
            [listeners.ssh]
            bind = ["127.0.0.1:\(port)"]
            protocol = "tcp"
            default = "home"
            max_connections_per_source = 3
            [listeners.rated]
            bind = ["127.0.0.1:\(ratePort)"]
            protocol = "tcp"
            default = "home"
            connection_rate_per_source = "5/1m"
            [upstreams.home]
            servers = ["127.0.0.1:\(home.port)"]
            """, in: sandbox)
        // Three held from one source: a fourth, and every one after it, is closed at once, before a byte.
        let held = try (0..<3).map { _ in try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.50") }
        defer { held.forEach { $0.close() } }
        #expect(Poll.until(timeout: 10) {
            HealthIntegrationTests.parsedMetrics(health).samples["tailgate_connections_active{listener=\"ssh\"}"] == 3
        })
        for _ in 0..<4 {
            let refused = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.50")
            #expect(refused.waitForClose(timeout: 3))
            refused.close()
        }
        #expect(held.allSatisfy { !$0.waitForClose(timeout: 0.3) }, "the held connections go on")
        // Another source is not affected, and the one over its limit is named once, not once per refusal.
        #expect(Self.ask(port, from: "127.0.0.51", path: "/other") == "home host=a.example client= uri=/other\n")
        #expect(tailgate.process.waitForOutput("client source is over max_connections_per_source"))
        let warnings = tailgate.process.output.components(separatedBy: "\n").filter { $0.contains("client source is over max_connections_per_source") }
        #expect(warnings.count == 1 && warnings[0].contains("source=127.0.0.50") && warnings[0].contains("open=3"), "\(warnings)")
        var samples = HealthIntegrationTests.parsedMetrics(health).samples
        #expect(samples["tailgate_source_limit_refusals_total{limit=\"connections\",listener=\"ssh\"}"] == 4, "\(samples)")
        #expect(samples["tailgate_connections_ended_total{listener=\"ssh\",outcome=\"over_source_limit\",route=\"none\"}"] == 4)
        // A connection that ends gives its slot back.
        held[0].close()
        #expect(Poll.until(timeout: 10) { Self.ask(port, from: "127.0.0.50", path: "/again") == "home host=a.example client= uri=/again\n" })

        // Five new connections a minute from one source: the sixth is closed; another source still gets in.
        for index in 0..<5 {
            #expect(Self.ask(ratePort, from: "127.0.0.60", path: "/\(index)") == "home host=a.example client= uri=/\(index)\n")
        }
        #expect(Self.ask(ratePort, from: "127.0.0.60", path: "/6") == "")
        #expect(Self.ask(ratePort, from: "127.0.0.61", path: "/7") == "home host=a.example client= uri=/7\n")
        #expect(tailgate.process.waitForOutput("client source is over connection_rate_per_source"))
        samples = HealthIntegrationTests.parsedMetrics(health).samples
        #expect(samples["tailgate_source_limit_refusals_total{limit=\"rate\",listener=\"rated\"}"] == 1, "\(samples)")
        #expect(tailgate.process.isRunning)
    }

    /// Behind a trusted hop every client arrives from the hop's address: the header's source is what counts,
    /// an IPv6 client per /64, and an http client over its limit is told 429.
    @Test func behindATrustedHopTheHeadersSourceIsCountedPerPrefix() throws {
        let sandbox = try Sandbox("source-limits-hop")
        defer { sandbox.tearDown() }
        let (port, tailgate) = try HTTPListenerTests.startWebListener(
            in: sandbox, extra: "proxy_protocol_from = [\"127.0.0.1/32\"]\nmax_connections_per_source = 1"
        )
        func request(from source: String) throws -> (client: RawClient, answer: String) {
            let client = try RawClient(host: "127.0.0.1", port: port)
            _ = client.send("PROXY TCP6 \(source) 2001:db8::80 40000 80\r\nGET /hop HTTP/1.1\r\nHost: a.example\r\n\r\n")
            return (client, String(decoding: client.receive(atLeast: 12, timeout: 10), as: UTF8.self))
        }
        let first = try request(from: "2001:db8:1::1")
        defer { first.client.close() }
        #expect(first.answer.hasPrefix("HTTP/1.1 200 OK"), "\(first.answer)")
        // The same /64, another address: over the limit while the first is open.
        let second = try request(from: "2001:db8:1::2")
        second.client.close()
        #expect(second.answer.hasPrefix("HTTP/1.1 429 Too Many Requests"), "\(second.answer)")
        // Another /64 gets in; the hop itself carries three connections at once and is never limited.
        let third = try request(from: "2001:db8:2::1")
        third.client.close()
        #expect(third.answer.hasPrefix("HTTP/1.1 200 OK"), "\(third.answer)")
        #expect(tailgate.process.waitForOutput("source=2001:db8:1::/64"), "\(tailgate.process.output.suffix(1_500))")
    }
}
