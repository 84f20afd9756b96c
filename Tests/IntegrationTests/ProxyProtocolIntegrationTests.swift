import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// PROXY protocol in and out, with a real HAProxy as the trusted (or untrusted) peer.
@Suite(.serialized)
struct ProxyProtocolIntegrationTests {
    /// A home-host setup: HAProxy stands in for the cloud tailgate and connects from `trustedSource`.
    static func homeHost(
        _ sandbox: Sandbox, relay: RelayMode = .splice
    ) throws -> (tailgate: TailgateInstance, port: Int, ops: NginxUpstream) {
        try sandbox.certificates.issue("server", dnsNames: ["ops.example.com", "tailgate.example.test", "pq.example.test"])
        let ops = try NginxUpstream.start("ops", in: sandbox)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(relay: relay, config: """
            [listeners.from_cloud]
            bind = ["127.0.0.1:\(port)"]
            proxy_protocol_from = ["127.0.0.2/32"]
            default = "ops"
            client_hello_timeout = "1s"

            [upstreams.ops]
            servers = ["127.0.0.1:\(ops.proxyPort)"]
            send_proxy = "v2"
            """, in: sandbox)
        return (tailgate, port, ops)
    }

    @Test func haproxyInFrontKeepsTheOriginalClientAddressUpToNginx() throws {
        let sandbox = try Sandbox("pp-chain")
        defer { sandbox.tearDown() }
        let (tailgate, port, _) = try Self.homeHost(sandbox)
        let haproxy = try HAProxyFront.start(to: port, source: "127.0.0.2", in: sandbox)
        let result = curl(sandbox, host: "ops.example.com", port: haproxy.port, extra: ["--interface", "127.0.0.5"])
        #expect(result.output == "ops 127.0.0.5 ops.example.com\n")
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.5:", "sni=ops.example.com"])
        #expect(line?.contains("peer=127.0.0.2:") == true)
        #expect(line?.contains("outcome=closed") == true)
    }

    @Test func theSameHeaderFromAnUntrustedPeerIsRefused() throws {
        let sandbox = try Sandbox("pp-untrusted")
        defer { sandbox.tearDown() }
        let (tailgate, port, _) = try Self.homeHost(sandbox)
        let haproxy = try HAProxyFront.start(to: port, source: "127.0.0.3", in: sandbox)
        let result = curl(sandbox, host: "ops.example.com", port: haproxy.port, extra: ["--interface", "127.0.0.5"])
        #expect(result.status != 0)
        #expect(!result.output.contains("127.0.0.5"))
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.3:", "outcome=bad_client_hello"])
        #expect(line?.contains("reason=not_tls") == true)

        // A hand-written spoof from an untrusted address is closed at once, never trusted.
        let spoof = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.4")
        spoof.send("PROXY TCP4 100.64.1.1 127.0.0.1 4444 443\r\n")
        #expect(spoof.waitForClose(timeout: 5))
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.4:", "reason=not_tls"]) != nil)
        #expect(!tailgate.process.output.contains("100.64.1.1"))
    }

    @Test func aTrustedPeerMustSendTheHeader() throws {
        let sandbox = try Sandbox("pp-required")
        defer { sandbox.tearDown() }
        let (tailgate, port, _) = try Self.homeHost(sandbox)
        let direct = curl(sandbox, host: "ops.example.com", port: port, extra: ["--interface", "127.0.0.2"])
        #expect(direct.status != 0)
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.2:", "outcome=bad_proxy_header"])
        #expect(line?.contains("reason=missing_proxy_header") == true)

        // Connects and says nothing (a load balancer's TCP check): closed at client_hello_timeout.
        let silent = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.2")
        #expect(silent.waitForClose(timeout: 5))
        #expect(tailgate.waitForConnectionLine(containing: ["outcome=client_hello_timeout", "reason=waiting_for_proxy_header"]) != nil)
    }

    /// When a connection fails after a trusted peer's header (a bad or slow ClientHello behind the cloud
    /// tailgate), its log line names the client from the header, as it does for connections that succeed.
    @Test(arguments: RelayMode.allCases)
    func aConnectionThatFailsAfterATrustedHeaderIsLoggedWithTheHeadersClient(relay: RelayMode) throws {
        let sandbox = try Sandbox("pp-failed-\(relay)")
        defer { sandbox.tearDown() }
        let (tailgate, port, _) = try Self.homeHost(sandbox, relay: relay)

        let garbage = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.2")
        garbage.send("PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\nGET / HTTP/1.0\r\n\r\n")
        #expect(garbage.waitForClose(timeout: 5))
        let refused = tailgate.waitForConnectionLine(containing: ["client=203.0.113.7:40000"])
        #expect(refused?.contains("peer=127.0.0.2:") == true, "\(refused ?? "no line")")
        #expect(refused?.contains("outcome=bad_client_hello") == true, "\(refused ?? "no line")")

        let partial = Array(try Captures.load("openssl-sni-alpn.bin").prefix(100))
        let slow = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.2")
        slow.send(Array("PROXY TCP4 203.0.113.8 198.51.100.1 40001 443\r\n".utf8) + partial)
        #expect(slow.waitForClose(timeout: 5))
        let timedOut = tailgate.waitForConnectionLine(containing: ["client=203.0.113.8:40001"])
        #expect(timedOut?.contains("outcome=client_hello_timeout") == true, "\(timedOut ?? "no line")")
    }

    @Test func aV1HeaderSplitAcrossSegmentsIsAssembledAndItsSourceForwarded() throws {
        let sandbox = try Sandbox("pp-v1")
        defer { sandbox.tearDown() }
        let (tailgate, port, _) = try Self.homeHost(sandbox)
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let client = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.2")
        for piece in ["PROX", "Y TCP4 203.0.113.9 127.0.0.1 5", "1000 443\r", "\n"] {
            client.send(piece)
            usleep(30_000)
        }
        client.send(hello)
        let reply = client.receive(atLeast: 5, timeout: 10)
        #expect(reply.first == 0x16, "expected a TLS handshake record from nginx, got \(reply.prefix(8))")
        client.close()
        let line = tailgate.waitForConnectionLine(containing: ["client=203.0.113.9:51000", "sni=tailgate.example.test"])
        #expect(line?.contains("peer=127.0.0.2:") == true)
    }
}

enum Captures {
    static func load(_ name: String) throws -> [UInt8] {
        let path = "\(Sandbox.repositoryRoot)/Tests/TailgateWireTests/Captures/\(name)"
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
