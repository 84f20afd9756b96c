import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// Clients that leave at every stage, with a FIN or a reset: before their ClientHello is complete, while the
/// upstream connects, in an idle relay, in the middle of a download. Each is logged once, the agent keeps
/// serving, and every socket is given back. (A client half-close in mid-relay: RelayIntegrationTests.)
@Suite(.serialized)
struct ClientResetTests {
    @Test(arguments: RelayMode.allCases)
    func aClientThatLeavesBeforeItsClientHelloIsCompleteIsClosedAndLoggedOnce(relay: RelayMode) throws {
        let sandbox = try Sandbox("leaves-early-\(relay)")
        defer { sandbox.tearDown() }
        let (tailgate, port) = try HostileSetup.startWithNginx(relay, sandbox, listener: "client_hello_timeout = \"10s\"")
        let pid = tailgate.process.pid
        for _ in 0..<4 { #expect(HostileSetup.serves(sandbox, port)) }
        let baseline = HostileSetup.atRest(pid, listening: 1)
        let partial = Array(try Captures.load("openssl-sni-alpn.bin").prefix(100))

        // A FIN after part of the ClientHello: tailgate hangs up at once instead of waiting for the rest, which
        // would take until client_hello_timeout (10 s) by the agent's own clock.
        let halfClosed = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.60")
        halfClosed.send(partial)
        halfClosed.shutdownWrite()
        #expect(halfClosed.waitForClose(timeout: 5))
        let halfClosedLine = tailgate.waitForConnectionLine(
            containing: ["client=127.0.0.60:", "outcome=client_closed_early", "reason=eof_before_client_hello"]
        )
        #expect(halfClosedLine.flatMap { HostileBytes.field("duration_ms", in: $0) }.map { $0 < 10_000 } == true, "\(halfClosedLine ?? "no line")")
        #expect(HostileSetup.serves(sandbox, port))

        // A reset after part of the ClientHello.
        let reset = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.61")
        reset.send(partial)
        #expect(Poll.until(timeout: 5) { TCPTable.peerHasReadEverything(of: reset, port: port) })
        reset.reset()
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.61:"])
        #expect(HostileSetup.endedByClient(line), "\(line ?? "no line")")
        #expect(HostileSetup.serves(sandbox, port))

        let after = HostileSetup.socketsReturn(to: baseline, pid: pid)
        #expect(after.sockets == baseline.sockets, "descriptors after: \(after); before: \(baseline)")
        for source in ["127.0.0.60", "127.0.0.61"] {
            #expect(tailgate.connectionLines(client: source).count == 1, "\(tailgate.connectionLines(client: source))")
        }
    }

    /// A peer that connects and leaves without a byte (a port scan, a load balancer's TCP check) is counted
    /// but logged at debug only, whether it leaves with a FIN or with a reset (SO_LINGER 0, as HAProxy's
    /// and most TCP checks do).
    @Test(arguments: RelayMode.allCases)
    func aPeerThatLeavesWithoutSendingIsLoggedOnlyAtDebugWhetherItClosesOrResets(relay: RelayMode) throws {
        let sandbox = try Sandbox("probe-\(relay)")
        defer { sandbox.tearDown() }
        let healthPort = TestPort.free()
        let (tailgate, port) = try HostileSetup.startWithNginx(relay, sandbox, more: """
            [health]
            listen = "127.0.0.1:\(healthPort)"
            """)
        #expect(TestPort.waitUntilAccepting(healthPort))
        func leftEarly() -> Double {
            HealthIntegrationTests.parsedMetrics(healthPort).samples
                .filter { $0.key.hasPrefix("tailgate_connections_ended_total{") && $0.key.contains("outcome=\"client_closed_early\"") }
                .values.reduce(0, +)
        }
        let before = leftEarly()

        let closes = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.70")
        closes.close()
        let resets = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.71")
        resets.reset()
        #expect(Poll.until(timeout: 10) { leftEarly() >= before + 2 }, "counted: \(leftEarly() - before)")

        // A peer that sent something is logged; its line is written after the probes' would have been.
        let garbage = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.72")
        garbage.send("hello?")
        #expect(garbage.waitForClose(timeout: 5))
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.72:", "outcome=bad_client_hello"]) != nil)
        #expect(tailgate.connectionLines(client: "127.0.0.70").isEmpty, "\(tailgate.connectionLines(client: "127.0.0.70"))")
        #expect(tailgate.connectionLines(client: "127.0.0.71").isEmpty, "\(tailgate.connectionLines(client: "127.0.0.71"))")
    }

    @Test(arguments: RelayMode.allCases)
    func aClientThatResetsWhileItsUpstreamIsStillConnectingIsLoggedAtOnceAndCostsNoCPU(relay: RelayMode) throws {
        let sandbox = try Sandbox("reset-connecting-\(relay)")
        defer { sandbox.tearDown() }
        let hole = try BlackHoleListener()
        let slowPort = TestPort.free()
        let (tailgate, port) = try HostileSetup.startWithNginx(relay, sandbox, more: """
            [listeners.slow]
            bind = ["127.0.0.1:\(slowPort)"]
            default = "hole"
            [upstreams.hole]
            servers = ["127.0.0.1:\(hole.port)"]
            connect_timeout = "3s"
            """)
        let pid = tailgate.process.pid
        for _ in 0..<4 { #expect(HostileSetup.serves(sandbox, port)) }
        let baseline = HostileSetup.atRest(pid, listening: 2)

        let client = try RawClient(host: "127.0.0.1", port: slowPort, source: "127.0.0.62")
        client.send(try Captures.load("openssl-sni-alpn.bin"))
        #expect(Poll.until(timeout: 5) { hole.pendingConnects == 1 }, "tailgate never started connecting to the black hole")
        let cpuBefore = cpuSeconds(pid)
        let resetAt = Date()
        client.reset()
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.62:"], timeout: 10)
        // The abandoned connect ends by connect_timeout at the latest; the agent idles meanwhile.
        #expect(Poll.until(timeout: 8) { hole.pendingConnects == 0 })
        let cpu = cpuSeconds(pid) - cpuBefore
        #expect(HostileSetup.endedByClient(line), "\(line ?? "no line")")
        // Logged when the client left, not when the connect would have timed out: by the agent's own clock,
        // the connection lasted less than connect_timeout (3 s), which began after it was accepted.
        #expect(line.flatMap { HostileBytes.field("duration_ms", in: $0) }.map { $0 < 3_000 } == true, "\(line ?? "no line")")
        #expect(cpu < 0.5, "tailgate used \(cpu) s of CPU in the \(Date().timeIntervalSince(resetAt)) s after the reset")

        #expect(HostileSetup.serves(sandbox, port))
        let after = HostileSetup.socketsReturn(to: baseline, pid: pid)
        #expect(after.sockets == baseline.sockets, "descriptors after: \(after); before: \(baseline)")
        #expect(tailgate.connectionLines(client: "127.0.0.62").count == 1, "\(tailgate.connectionLines(client: "127.0.0.62"))")
    }

    @Test(arguments: RelayMode.allCases)
    func aClientThatResetsMidRelayClosesTheUpstreamSideAndIsLoggedOnce(relay: RelayMode) throws {
        let sandbox = try Sandbox("reset-relay-\(relay)")
        defer { sandbox.tearDown() }
        let server = try RawServer(.drain)
        let (tailgate, port, rawPort, baseline) = try HostileSetup.startWithRawListener(relay, sandbox, servers: [server.port])
        let pid = tailgate.process.pid

        let sent = try Captures.load("openssl-sni-alpn.bin") + Array("the first bytes of a conversation".utf8)
        let client = try RawClient(host: "127.0.0.1", port: rawPort, source: "127.0.0.63")
        client.send(sent)
        #expect(Poll.until(timeout: 5) { server.received.count == sent.count })
        client.reset()
        #expect(Poll.until(timeout: 3) { server.finished }, "the upstream side stayed open after the client's reset")
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.63:"])
        #expect(line?.contains("outcome=reset reason=\"client: ") == true, "\(line ?? "no line")")

        #expect(HostileSetup.serves(sandbox, port))
        let after = HostileSetup.socketsReturn(to: baseline, pid: pid)
        #expect(after.sockets == baseline.sockets, "descriptors after: \(after); before: \(baseline)")
        #expect(tailgate.connectionLines(client: "127.0.0.63").count == 1, "\(tailgate.connectionLines(client: "127.0.0.63"))")
    }

    /// The relay writes to a client that reset while a download streams to it: the write fails, and only
    /// that connection may end.
    @Test(arguments: RelayMode.allCases)
    func aClientThatResetsInTheMiddleOfADownloadEndsOnlyItsOwnConnection(relay: RelayMode) throws {
        let sandbox = try Sandbox("reset-download-\(relay)")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let servers = try (0..<10).map { _ in try RawServer(.streamUntilGone(after: hello.count)) }
        let (tailgate, port, rawPort, baseline) = try HostileSetup.startWithRawListener(relay, sandbox, servers: servers.map(\.port))
        let pid = tailgate.process.pid

        var received: [Int] = []
        for index in 0..<10 {
            guard let client = try? RawClient(host: "127.0.0.1", port: rawPort, source: "127.0.0.\(90 + index)") else { break }
            client.send(hello)
            received.append(client.receive(atLeast: 1 << 20, timeout: 10).count)
            client.reset()
        }
        #expect(received.count == 10 && received.allSatisfy { $0 >= 1 << 20 }, "bytes each client got before its reset: \(received)")
        // A client that could not connect means the agent is going down: it takes a moment to write its crash report.
        if received.count < 10 { _ = tailgate.process.waitForExit(timeout: 5) }
        #expect(tailgate.process.isRunning, "tailgate died: \(tailgate.process.output.suffix(300))")
        guard tailgate.process.isRunning else { return }
        #expect(Poll.until(timeout: 5) { servers.allSatisfy(\.finished) }, "an upstream side stayed open")
        #expect(HostileSetup.serves(sandbox, port))
        let after = HostileSetup.socketsReturn(to: baseline, pid: pid)
        #expect(after.sockets == baseline.sockets, "descriptors after: \(after); before: \(baseline)")
        for index in 0..<10 {
            #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.\(90 + index):"], timeout: 5) != nil)
            #expect(tailgate.connectionLines(client: "127.0.0.\(90 + index)").count == 1)
        }
        HostileSetup.expectEndedByClient(tailgate, sources: (90..<100).map { "127.0.0.\($0)" })
    }
}
