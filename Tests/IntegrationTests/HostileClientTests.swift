import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// Hostile clients before routing, against the real binary: floods of silent connections, dribbles, oversized
/// records and PROXY headers, garbage. Each one is closed with its reason logged once, gives back what it
/// held, and never keeps anyone else from being served.
///
/// Already covered elsewhere, so not repeated here: HTTP and an endless 0xFFFF record on a plain listener
/// (BadInputIntegrationTests), a trusted peer without a PROXY header and a header from a peer outside
/// `proxy_protocol_from` (ProxyProtocolIntegrationTests).
@Suite(.serialized)
struct HostileClientTests {
    @Test(arguments: RelayMode.allCases)
    func twoThousandSilentConnectionsAreClosedAtTheTimeoutAndGiveBackWhatTheyHeld(relay: RelayMode) throws {
        raiseDescriptorLimit()
        let sandbox = try Sandbox("silent-\(relay)")
        defer { sandbox.tearDown() }
        let (tailgate, port) = try HostileSetup.startWithNginx(relay, sandbox, listener: "client_hello_timeout = \"1s\"")
        let pid = tailgate.process.pid
        // Warm up: each relay thread has relayed a connection, so its pipe pool and first allocations exist.
        for _ in 0..<4 { #expect(HostileSetup.serves(sandbox, port)) }
        let baseline = HostileSetup.atRest(pid, listening: 1)
        let baselineKiB = residentKiB(pid)

        let count = 2_000
        var clients: [RawClient] = []
        var opened: [Date] = []
        var heldDuring = DescriptorCount()
        var servedDuring = false
        for index in 0..<count {
            // Taken before the connect, so that the time to the close is never short of the agent's timer.
            opened.append(Date())
            clients.append(try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.20"))
            if index == count / 2 {
                // Half the flood is open (tailgate accepts it over some milliseconds): a real client still gets through.
                _ = Poll.until(timeout: 0.8) {
                    heldDuring = openDescriptors(pid)
                    return heldDuring.sockets > baseline.sockets + count / 4
                }
                servedDuring = HostileSetup.serves(sandbox, port)
            }
        }
        let openedIn = opened[count - 1].timeIntervalSince(opened[0])
        #expect(heldDuring.sockets > baseline.sockets + count / 4, "held during the flood: \(heldDuring); before: \(baseline); opened in \(openedIn) s")
        #expect(servedDuring, "a TLS connection failed during the flood")

        // Each client sees its connection end (EOF or reset) at the timeout: not before, and not long after.
        // (How long after is known only from when this loop starts watching: on a slow machine the flood
        // itself can take longer than the timeout.)
        let watchedFrom = Date()
        var closedAfter = [Double?](repeating: nil, count: count)
        var bytesReceived = 0
        var waiting = Array(0..<count)
        let deadline = Date().addingTimeInterval(10)
        while !waiting.isEmpty, Date() < deadline {
            var entries = waiting.map { pollfd(fd: clients[$0].fd, events: Int16(POLLIN), revents: 0) }
            guard poll(&entries, nfds_t(entries.count), 50) > 0 else { continue }
            let now = Date()
            var still: [Int] = []
            for (index, entry) in zip(waiting, entries) {
                guard entry.revents != 0 else {
                    still.append(index)
                    continue
                }
                closedAfter[index] = now.timeIntervalSince(opened[index])
                var byte: UInt8 = 0
                if recv(entry.fd, &byte, 1, Int32(MSG_DONTWAIT)) > 0 { bytesReceived += 1 }
            }
            waiting = still
        }
        #expect(waiting.isEmpty, "\(waiting.count) of \(count) silent connections were still open 10 s after the flood")
        let closed = closedAfter.compactMap { $0 }
        #expect((closed.min() ?? 0) >= 0.9, "a silent connection was closed after \(closed.min() ?? 0) s, before client_hello_timeout")
        let late = (0..<count).filter { index in
            closedAfter[index].map { $0 > max(4.0, watchedFrom.timeIntervalSince(opened[index]) + 1.0) } ?? false
        }
        #expect(late.isEmpty, "\(late.count) silent connections were closed late, one after \(late.first.flatMap { closedAfter[$0] } ?? 0) s")
        #expect(bytesReceived == 0)
        for client in clients { client.close() }

        // One line each, all with the same outcome.
        var lines: [String] = []
        _ = Poll.until(timeout: 15) {
            lines = tailgate.connectionLines(client: "127.0.0.20")
            return lines.count >= count
        }
        #expect(lines.count == count)
        #expect(lines.allSatisfy { $0.contains("outcome=client_hello_timeout reason=waiting_for_client_hello") })

        // Given back: every socket, and memory within a margin (the allocator may keep some).
        let after = HostileSetup.socketsReturn(to: baseline, pid: pid)
        #expect(after.sockets == baseline.sockets, "descriptors after: \(after); before: \(baseline)")
        #expect(after.total <= baseline.total + 4, "descriptors after: \(after); before: \(baseline)")
        var afterKiB = residentKiB(pid)
        let settled = Poll.until(timeout: 10) {
            afterKiB = residentKiB(pid)
            return afterKiB <= baselineKiB + 8 * 1_024
        }
        #expect(settled, "RSS \(afterKiB) KiB after the flood, \(baselineKiB) KiB before")
        #expect(HostileSetup.serves(sandbox, port))
        #expect(tailgate.process.isRunning)
    }

    /// BadInputIntegrationTests dribbles 40 bytes and only checks that the connection ends some time; here the
    /// whole ClientHello would take 52 s, so a timer restarted by each byte would keep it open.
    @Test func aClientHelloDribbledOneByteEveryTenthOfASecondIsClosedAtTheTimeout() throws {
        let sandbox = try Sandbox("dribble")
        defer { sandbox.tearDown() }
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "u"
            client_hello_timeout = "2s"
            [upstreams.u]
            servers = ["\(TestPort.refusingAddress)"]
            """, in: sandbox)
        let hello = try Captures.load("curl.bin")
        // Taken before the connect: the time to the close is then never short of the agent's timer.
        let start = Date()
        let client = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.21")
        var closedAfter: Double?
        for byte in hello {
            // Waiting up to 100 ms for tailgate to hang up paces the dribble.
            if !client.send([byte]) || client.waitForClose(timeout: 0.1) {
                closedAfter = Date().timeIntervalSince(start)
                break
            }
        }
        // At the timeout, not before, and an order of magnitude before the dribble would end.
        #expect(closedAfter.map { (1.9..<5).contains($0) } == true, "closed after \(closedAfter.map { "\($0) s" } ?? "never")")
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.21:", "outcome=client_hello_timeout", "reason=waiting_for_client_hello"])
        // Bytes kept coming before the timeout (at most 21 at this pace; fewer on a busy machine, but more than
        // one), so a timer restarted by each would have been restarted.
        let bytesIn = line.flatMap { HostileBytes.field("bytes_in", in: $0) }
        #expect(bytesIn.map { (2...25).contains($0) } == true, "\(line ?? "no line")")
    }

    @Test func oversizedRecordsAndHandshakeMessagesAreRefusedAtOnceAndCounted() throws {
        let sandbox = try Sandbox("oversized")
        defer { sandbox.tearDown() }
        let server = try RawServer(.drain)
        let port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "raw"
            client_hello_timeout = "10s"
            [upstreams.raw]
            servers = ["127.0.0.1:\(server.port)"]
            """, in: sandbox)
        let cases: [(source: String, bytes: [UInt8], reason: String)] = [
            // A record one byte longer than TLS allows (2^14 + 1).
            ("127.0.0.22", [0x16, 0x03, 0x01, 0x40, 0x01] + [UInt8](repeating: 0x01, count: 64), "record_too_large"),
            // A ClientHello announcing 16,376 bytes: with its headers one byte more than the sniffer's 16 KiB.
            ("127.0.0.23", [0x16, 0x03, 0x01, 0x00, 0x64, 0x01, 0x00, 0x3F, 0xF8] + [UInt8](repeating: 0x03, count: 96), "too_large"),
        ]
        for (source, bytes, reason) in cases {
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            client.send(bytes)
            #expect(client.waitForClose(timeout: 5), "\(reason)")
            let line = tailgate.waitForConnectionLine(containing: ["client=\(source):", "outcome=bad_client_hello", "reason=\(reason)"])
            Self.expectRefusedBeforeTheTimeout(line, timeoutMilliseconds: 10_000, "\(reason)")
        }

        // The largest ClientHello the sniffer takes (one record, 16,384 bytes with its header) is routed whole.
        let hello = HostileBytes.padded(try Captures.load("openssl-sni-alpn.bin"), to: 16_384)
        let large = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.24")
        large.send(hello)
        #expect(Poll.until(timeout: 5) { server.received.count >= hello.count })
        #expect(server.received == hello)
        large.close()
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.24:", "sni=tailgate.example.test", "bytes_in=16384 ", "outcome=closed"]) != nil)

        let metrics = HealthIntegrationTests.parsedMetrics(healthPort).samples
        #expect(metrics["tailgate_client_hello_failures_total{listener=\"public\",reason=\"record_too_large\"}"] == 1)
        #expect(metrics["tailgate_client_hello_failures_total{listener=\"public\",reason=\"too_large\"}"] == 1)
    }

    @Test func garbageIsRefusedAtOnceWithItsReasonLogged() throws {
        let sandbox = try Sandbox("garbage")
        defer { sandbox.tearDown() }
        let (tailgate, port) = try HostileSetup.startWithNginx(.splice, sandbox, listener: "client_hello_timeout = \"10s\"")
        var random = TestRandom(seed: 0x7A11_6A7E)
        var noise = random.bytes(4_096)
        if noise[0] == 0x16 { noise[0] = 0x17 }
        let cases: [(source: String, bytes: [UInt8], reason: String)] = [
            ("127.0.0.25", noise, "not_tls"),
            ("127.0.0.26", Array("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".utf8), "not_tls"),
            // An SSLv2-compatible hello (a 2-byte header with the high bit set).
            ("127.0.0.27", [0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10] + random.bytes(37), "not_tls"),
            // TLS application data before any handshake.
            ("127.0.0.28", [0x17, 0x03, 0x03, 0x00, 0x20] + random.bytes(32), "not_tls"),
            // A handshake record holding a ServerHello.
            ("127.0.0.29", [0x16, 0x03, 0x03, 0x00, 0x40, 0x02] + random.bytes(63), "not_client_hello"),
            // A ClientHello header followed by random bytes.
            ("127.0.0.30", [0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7C] + random.bytes(124), "malformed"),
        ]
        for (source, bytes, reason) in cases {
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            client.send(bytes)
            #expect(client.waitForClose(timeout: 5), "\(source)")
            let line = tailgate.waitForConnectionLine(containing: ["client=\(source):", "outcome=bad_client_hello", "reason=\(reason)"])
            Self.expectRefusedBeforeTheTimeout(line, timeoutMilliseconds: 10_000, "\(source): \(tailgate.connectionLines(client: source))")
        }
        #expect(HostileSetup.serves(sandbox, port))
    }

    @Test func proxyHeadersOnAListenerThatTrustsNobodyAreNeverHonoured() throws {
        let sandbox = try Sandbox("pp-nobody")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com", "tailgate.example.test"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free()
        // No proxy_protocol_from at all; nginx is sent a v1 header and answers with the client address it got.
        let tailgate = try TailgateInstance.start(config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            client_hello_timeout = "10s"
            [upstreams.app]
            servers = ["127.0.0.1:\(app.proxyPort)"]
            send_proxy = "v1"
            """, in: sandbox)
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let spoofs: [(source: String, bytes: [UInt8])] = [
            ("127.0.0.40", Array("PROXY TCP4 203.0.113.77 127.0.0.1 4444 443\r\n".utf8) + hello),
            ("127.0.0.41", HostileBytes.proxyV2(source: "203.0.113.78", sourcePort: 4444) + hello),
        ]
        for (source, bytes) in spoofs {
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            client.send(bytes)
            #expect(client.waitForClose(timeout: 5))
            let line = tailgate.waitForConnectionLine(containing: ["client=\(source):", "outcome=bad_client_hello", "reason=not_tls"])
            Self.expectRefusedBeforeTheTimeout(line, timeoutMilliseconds: 10_000, source)
        }
        #expect(!tailgate.process.output.contains("203.0.113."))
        let honest = curl(sandbox, host: "app.example.com", port: port, extra: ["--interface", "127.0.0.42"])
        #expect(honest.output == "app 127.0.0.42 app.example.com\n")
    }

    @Test func oversizedOrTruncatedProxyV2HeadersAreRefusedWithoutWaitingForever() throws {
        let sandbox = try Sandbox("pp-v2-large")
        defer { sandbox.tearDown() }
        let server = try RawServer(.drain)
        let port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            proxy_protocol_from = ["127.0.0.0/8"]
            default = "raw"
            client_hello_timeout = "2s"
            [upstreams.raw]
            servers = ["127.0.0.1:\(server.port)"]
            """, in: sandbox)
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let refusedAtOnce: [(source: String, bytes: [UInt8], reason: String)] = [
            // The length field announces 60,000 bytes; 2,000 follow.
            ("127.0.0.50", HostileBytes.proxyV2(source: "203.0.113.50", announcedLength: 60_000) + [UInt8](repeating: 0, count: 2_000), "v2_too_long"),
            // A 112-byte header holding a TLV that claims 60,000 bytes.
            ("127.0.0.51", HostileBytes.proxyV2(source: "203.0.113.51", tlvs: [0x04, 0xEA, 0x60] + [UInt8](repeating: 0, count: 97)) + hello, "malformed_tlv"),
            // No header at all from a peer inside 127.0.0.0/8.
            ("127.0.0.54", hello, "missing_proxy_header"),
        ]
        for (source, bytes, reason) in refusedAtOnce {
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            client.send(bytes)
            #expect(client.waitForClose(timeout: 5), "\(reason)")
            let line = tailgate.waitForConnectionLine(containing: ["client=\(source):", "outcome=bad_proxy_header", "reason=\(reason)"])
            Self.expectRefusedBeforeTheTimeout(line, timeoutMilliseconds: 2_000, "\(reason)")
        }

        // A header announcing 600 bytes of which 100 come: waited for until client_hello_timeout, no longer.
        // (Timed from before the connect, so never short of the agent's timer.)
        let start = Date()
        let truncated = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.52")
        truncated.send(HostileBytes.proxyV2(source: "203.0.113.52", announcedLength: 600) + [UInt8](repeating: 0, count: 100))
        #expect(!truncated.waitForClose(timeout: 0.5), "a header that may still complete was refused early")
        #expect(truncated.waitForClose(timeout: 8))
        let elapsed = Date().timeIntervalSince(start)
        #expect((1.9..<5).contains(elapsed), "closed after \(elapsed) s")
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.52:", "outcome=client_hello_timeout", "reason=waiting_for_proxy_header"]) != nil)

        // A large well-formed header (a 900-byte NOOP TLV) is taken off, and the ClientHello behind it goes on alone.
        let padded = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.53")
        padded.send(HostileBytes.proxyV2(source: "203.0.113.53", sourcePort: 5353, tlvs: [0x04, 0x03, 0x84] + [UInt8](repeating: 0, count: 900)) + hello)
        #expect(Poll.until(timeout: 5) { server.received.count >= hello.count })
        #expect(server.received == hello)
        padded.close()
        let line = tailgate.waitForConnectionLine(containing: ["client=203.0.113.53:5353", "sni=tailgate.example.test"])
        #expect(line?.contains("peer=127.0.0.53:") == true)

        let metrics = HealthIntegrationTests.parsedMetrics(healthPort).samples
        for reason in ["v2_too_long", "malformed_tlv", "missing_proxy_header", "timeout"] {
            #expect(metrics["tailgate_proxy_header_rejections_total{listener=\"public\",reason=\"\(reason)\"}"] == 1, "\(reason)")
        }
        #expect(tailgate.process.isRunning)
    }

    /// A connection refused for what it sent is refused at once: by the agent's own clock (which the test's
    /// scheduling does not stretch), before the listener's client_hello_timeout, which waiting for more
    /// would have cost.
    static func expectRefusedBeforeTheTimeout(_ line: String?, timeoutMilliseconds: Int, _ comment: String) {
        let duration = line.flatMap { HostileBytes.field("duration_ms", in: $0) }
        #expect(duration.map { $0 < timeoutMilliseconds } == true, "\(comment): \(line ?? "no line")")
    }
}
