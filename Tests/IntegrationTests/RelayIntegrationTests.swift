import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// The relay's contract: half-closes pass through, a slow side holds the other back, idle connections end.
@Suite(.serialized)
struct RelayIntegrationTests {
    /// Both relays: splice(2) through the engine (the default) and NIO's copying fallback.
    /// Every relay engine the agent offers (`[global] relay`): each of these tests runs under all of them.
    static let relays = RelayMode.allCases.map(\.rawValue)

    static func start(upstreamPort: Int, in sandbox: Sandbox, idle: String = "10m", relay: String) throws -> (TailgateInstance, Int) {
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [global]
            relay = "\(relay)"
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "raw"
            [upstreams.raw]
            servers = ["127.0.0.1:\(upstreamPort)"]
            idle_timeout = "\(idle)"
            """, in: sandbox)
        return (tailgate, port)
    }

    @Test(arguments: relays) func aClientHalfCloseReachesTheServerWhichCanStillAnswer(relay: String) throws {
        let sandbox = try Sandbox("half-close-\(relay)")
        defer { sandbox.tearDown() }
        let server = try RawServer(.replyAfterEOF("answer after your EOF"))
        let (tailgate, port) = try Self.start(upstreamPort: server.port, in: sandbox, relay: relay)
        let hello = try Captures.load("curl.bin")
        let client = try RawClient(host: "127.0.0.1", port: port)
        client.send(hello + Array("and some more".utf8))
        client.shutdownWrite()
        let reply = client.receive(atLeast: 21, timeout: 10)
        #expect(String(decoding: reply, as: UTF8.self) == "answer after your EOF")
        #expect(client.waitForClose(timeout: 5))
        #expect(server.sawEOF)
        #expect(server.received == hello + Array("and some more".utf8))
        let line = tailgate.waitForConnectionLine(containing: ["sni=www.example.test", "outcome=closed"])
        #expect(line?.contains("bytes_in=\(hello.count + 13) bytes_out=21") == true)
    }

    @Test(arguments: relays) func aServerThatNeverReadsHoldsTheClientBackInsteadOfFillingMemory(relay: String) throws {
        let sandbox = try Sandbox("backpressure-\(relay)")
        defer { sandbox.tearDown() }
        let server = try RawServer(.neverRead(seconds: 6))
        let (tailgate, port) = try Self.start(upstreamPort: server.port, in: sandbox, relay: relay)
        let baseline = residentKiB(tailgate.process.pid)
        let client = try RawClient(host: "127.0.0.1", port: port)
        client.send(try Captures.load("curl.bin"))
        // Write without blocking for a while; the relay must stop reading once the server's side is full.
        let flags = fcntl(client.fd, F_GETFL)
        _ = fcntl(client.fd, F_SETFL, flags | O_NONBLOCK)
        let chunk = [UInt8](repeating: 0x42, count: 65_536)
        var accepted = 0
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            let sent = chunk.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 { accepted += sent } else { usleep(10_000) }
        }
        let grown = residentKiB(tailgate.process.pid) - baseline
        // Kernel socket buffers on both hops plus at most a pipe or NIO's write buffer; far below what 3 s of loopback could push (GBs).
        #expect(accepted < 64 * 1_048_576, "accepted \(accepted) bytes")
        #expect(grown < 32 * 1_024, "RSS grew by \(grown) KiB")
        // When the server gives up, both sides are closed and the connection is logged.
        #expect(tailgate.waitForConnectionLine(containing: ["sni=www.example.test"], timeout: 20) != nil)
        #expect(client.waitForClose(timeout: 5))
    }

    @Test(arguments: relays) func anIdleConnectionIsClosedAfterIdleTimeout(relay: String) throws {
        let sandbox = try Sandbox("idle-\(relay)")
        defer { sandbox.tearDown() }
        let server = try RawServer(.drain)
        let (tailgate, port) = try Self.start(upstreamPort: server.port, in: sandbox, idle: "1s", relay: relay)
        let client = try RawClient(host: "127.0.0.1", port: port)
        // Timed from before the last bytes that count as activity, so never short of the agent's timer.
        let start = Date()
        client.send(try Captures.load("curl.bin"))
        #expect(client.waitForClose(timeout: 6))
        #expect(Date().timeIntervalSince(start) >= 0.9)
        #expect(tailgate.waitForConnectionLine(containing: ["outcome=idle_timeout", "sni=www.example.test"]) != nil)
        #expect(Poll.until(timeout: 5) { server.sawEOF })
    }
}
