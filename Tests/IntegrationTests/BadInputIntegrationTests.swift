import Foundation
import TailgateTestSupport
import Testing

/// Hostile and broken clients: each is closed with its reason logged while everyone else is served.
@Suite(.serialized)
struct BadInputIntegrationTests {
    @Test func hostileClientsAreClosedWithAReasonAndOthersAreStillServed() throws {
        let sandbox = try Sandbox("bad-input")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com", "tailgate.example.test"])
        let upstream = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            client_hello_timeout = "2s"
            [upstreams.app]
            servers = ["127.0.0.1:\(upstream.plainPort)"]
            """, in: sandbox)

        // A long-lived good connection that must survive everything below.
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let survivor = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.9")
        survivor.send(hello)
        #expect(survivor.receive(atLeast: 5).first == 0x16)

        let garbage = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.10")
        garbage.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(garbage.waitForClose(timeout: 5))

        let endless = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.11")
        endless.send([0x16, 0x03, 0x01, 0xFF, 0xFF] + [UInt8](repeating: 0x41, count: 4_000))
        #expect(endless.waitForClose(timeout: 5))

        let huge = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.12")
        huge.send([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0x03, 0x03])
        #expect(huge.waitForClose(timeout: 5))

        // Timed from before the connect, so never short of the agent's timer.
        let silentStart = Date()
        let silent = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.13")
        #expect(silent.waitForClose(timeout: 6))
        #expect(Date().timeIntervalSince(silentStart) > 1.5)

        // A ClientHello one byte at a time, quickly enough: it is assembled and routed.
        let dribble = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.14")
        for byte in hello {
            dribble.send([byte])
            usleep(1_000)
        }
        #expect(dribble.receive(atLeast: 5).first == 0x16)
        dribble.close()

        // Too slowly: closed at client_hello_timeout, not held forever.
        let slow = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.15")
        var closedEarly = false
        for byte in hello.prefix(40) {
            if !slow.send([byte]) { closedEarly = true; break }
            usleep(100_000)
        }
        #expect(closedEarly || slow.waitForClose(timeout: 3))

        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.10:", "outcome=bad_client_hello", "reason=not_tls"]) != nil)
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.11:", "reason=record_too_large"]) != nil)
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.12:", "reason=too_large"]) != nil)
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.13:", "outcome=client_hello_timeout"]) != nil)
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.14:", "sni=tailgate.example.test"]) != nil)
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.15:", "outcome=client_hello_timeout"]) != nil)

        // Still serving: the survivor's connection is open and new clients get through.
        #expect(tailgate.process.isRunning)
        #expect(curl(sandbox, host: "app.example.com", port: port).output == "app  app.example.com\n")
        survivor.close()
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.9:", "sni=tailgate.example.test", "upstream=app"]) != nil)
    }

    @Test func overMaxConnectionsNewConnectionsAreClosedAndExistingOnesKept() throws {
        let sandbox = try Sandbox("max-conn")
        defer { sandbox.tearDown() }
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.small]
            bind = ["127.0.0.1:\(port)"]
            default = "u"
            max_connections = 2
            client_hello_timeout = "20s"
            [upstreams.u]
            servers = ["\(TestPort.refusingAddress)"]
            """, in: sandbox)
        let first = try RawClient(host: "127.0.0.1", port: port)
        let second = try RawClient(host: "127.0.0.1", port: port)
        usleep(500_000)
        let third = try RawClient(host: "127.0.0.1", port: port)
        #expect(third.waitForClose(timeout: 3))
        #expect(tailgate.process.waitForOutput("listener is at max_connections"))
        // The two admitted connections are still open.
        #expect(!first.waitForClose(timeout: 0.3))
        #expect(!second.waitForClose(timeout: 0.3))
        first.close()
        #expect(Poll.until(timeout: 15) {
            guard let fourth = try? RawClient(host: "127.0.0.1", port: port) else { return false }
            return !fourth.waitForClose(timeout: 1)
        })
    }
}
