import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// Upstream servers that never answer, reset in mid-stream or are all down, with each relay engine.
///
/// Already covered elsewhere: a refusing server skipped by round robin (RoutingIntegrationTests), one refusing
/// server logged as upstream_unavailable (CommandLineTests, JSON log), a server that never reads
/// (RelayIntegrationTests, default relay only), servers marked down by checks (HealthIntegrationTests).
@Suite(.serialized)
struct UpstreamFailureTests {
    /// A black-holed server costs one connection connect_timeout; new connections then skip it for
    /// fail_timeout (as nginx's max_fails=1 fail_timeout=10s does) and try it again after.
    @Test(arguments: RelayMode.allCases)
    func aBlackHoledServerIsGivenUpAfterConnectTimeoutAndSkippedForFailTimeout(relay: RelayMode) throws {
        let sandbox = try Sandbox("black-hole-\(relay)")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let good = try NginxUpstream.start("good", in: sandbox)
        let hole = try BlackHoleListener()
        let port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try TailgateInstance.start(relay: relay, config: TailgateInstance.healthConfig(
            port: port, healthPort: healthPort, upstream: "app", servers: ["127.0.0.1:\(hole.port)", "127.0.0.1:\(good.plainPort)"],
            settings: "connect_timeout = \"500ms\"\nfail_timeout = \"2s\""
        ), in: sandbox)
        var durations: [Double] = []
        func request() {
            let start = Date()
            let result = curl(sandbox, host: "app.example.com", port: port)
            durations.append(Date().timeIntervalSince(start))
            #expect(result.output == "good  app.example.com\n", "\(result.output)")
        }
        for _ in 0..<4 { request() }
        // The first connection tries the black hole first and waits out connect_timeout; round robin would
        // send the third there too, but the server is skipped now (below: only two connections took 500 ms,
        // by the agent's own clock; curl's wall time also counts its start, long on a busy machine).
        #expect(durations[0] >= 0.5, "connection 1 took \(durations[0]) s")
        #expect(Command.run(Sandbox.tailgateBinary, ["status", "--health", "127.0.0.1:\(healthPort)"]).output
            .contains("127.0.0.1:\(hole.port)         skipped"))
        // After fail_timeout it is tried again (the fifth connection starts the round at the black hole).
        Thread.sleep(forTimeInterval: 2.1)
        request()
        #expect(durations[4] >= 0.5, "connection 5 took \(durations[4]) s")
        // The last line is written once both sides have closed, a moment after curl returns.
        #expect(Poll.until(timeout: 5) { tailgate.connectionLines.count == 5 })
        let lines = tailgate.connectionLines
        #expect(lines.allSatisfy { $0.contains("upstream=app server=127.0.0.1:\(good.plainPort) ") && $0.contains("outcome=closed") })
        #expect(lines.filter { (HostileBytes.field("duration_ms", in: $0) ?? 0) >= 500 }.count == 2, "\(lines)")
        let skipping = tailgate.process.output.split(separator: "\n").filter { $0.contains("new connections skip it for fail_timeout") }
        #expect(skipping.count == 2 && skipping.allSatisfy { $0.contains("server=127.0.0.1:\(hole.port)") && $0.contains("fail_timeout_ms=2000") },
                "\(skipping)")
        #expect(skipping.allSatisfy { $0.contains("error=\"connect timed out after 500 ms\"") }, "\(skipping)")
        let metrics = HealthIntegrationTests.parsedMetrics(healthPort).samples
        #expect(metrics["tailgate_upstream_connect_failures_total{server=\"127.0.0.1:\(hole.port)\",upstream=\"app\"}"] == 2)
        #expect(metrics["tailgate_upstream_connect_failures_total{server=\"127.0.0.1:\(good.plainPort)\",upstream=\"app\"}"] == 0)
        #expect(Poll.until(timeout: 5) { hole.pendingConnects == 0 }, "a connect to the black hole outlived connect_timeout")
    }

    /// A backup server carries the upstream only when no other server can: the connection that finds the
    /// server gone is carried by the backup at once (the client never sees the failure), new connections go
    /// straight to it while the server is skipped, and the status says which server is the backup and that
    /// it is serving.
    @Test func aBackupServerServesOnlyWhenNoOtherServerCan() throws {
        let sandbox = try Sandbox("backup-server")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let primary = try NginxUpstream.start("primary", in: sandbox)
        let spare = try NginxUpstream.start("spare", in: sandbox)
        let (port, healthPort) = (TestPort.free(), TestPort.free())
        let tailgate = try TailgateInstance.start(config: TailgateInstance.healthConfig(
            port: port, healthPort: healthPort, upstream: "app", servers: ["127.0.0.1:\(primary.plainPort)"],
            settings: "backup = [\"127.0.0.1:\(spare.plainPort)\"]\nfail_timeout = \"1h\""
        ), in: sandbox)
        for _ in 0..<3 { #expect(curl(sandbox, host: "app.example.com", port: port).output == "primary  app.example.com\n") }
        _ = primary.process.stop()
        for _ in 0..<3 { #expect(curl(sandbox, host: "app.example.com", port: port).output == "spare  app.example.com\n") }
        #expect(Poll.until(timeout: 5) { tailgate.connectionLines.count == 6 })
        let lines = tailgate.connectionLines
        #expect(lines.filter { $0.contains("server=127.0.0.1:\(primary.plainPort) ") }.count == 3, "\(lines)")
        #expect(lines.filter { $0.contains("server=127.0.0.1:\(spare.plainPort) ") && $0.contains("outcome=closed") }.count == 3, "\(lines)")
        // One failed connect (the connection that found the server gone, and went on to the backup); then
        // the server was skipped and new connections went to the backup first.
        let metrics = HealthIntegrationTests.parsedMetrics(healthPort).samples
        #expect(metrics["tailgate_upstream_connect_failures_total{server=\"127.0.0.1:\(primary.plainPort)\",upstream=\"app\"}"] == 1)
        #expect(metrics["tailgate_upstream_connect_failures_total{server=\"127.0.0.1:\(spare.plainPort)\",upstream=\"app\"}"] == 0)
        let status = HealthIntegrationTests.http(healthPort, "/status").body
        #expect(status.contains("{\"address\":\"127.0.0.1:\(spare.plainPort)\",\"state\":\"unchecked\",\"active_connections\":0,\"backup\":true,"), "\(status)")
        #expect(status.contains("{\"address\":\"127.0.0.1:\(primary.plainPort)\",\"state\":\"skipped\",\"active_connections\":0,\"certificate_not_after\""), "\(status)")
        let text = Command.run(Sandbox.tailgateBinary, ["status", "--health", "127.0.0.1:\(healthPort)"]).output
        #expect(text.contains("127.0.0.1:\(spare.plainPort) (backup)"), "\(text)")
        let page = HealthIntegrationTests.http(healthPort, "/status?format=html").body
        #expect(page.contains("No server of upstream <b>app</b> can be used (down or skipped): its backup servers serve."), "\(page)")
        #expect(page.contains("<code>127.0.0.1:\(spare.plainPort)</code> <span class=\"muted\">backup</span>"), "\(page)")
    }

    /// A reload that turns fail_timeout off ends the skipping at once.
    @Test func aReloadThatTurnsFailTimeoutOffEndsTheSkipping() throws {
        let sandbox = try Sandbox("fail-timeout-off")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let good = try NginxUpstream.start("good", in: sandbox)
        let (port, healthPort) = (TestPort.free(), TestPort.free())
        func config(_ failTimeout: String) -> String {
            TailgateInstance.healthConfig(port: port, healthPort: healthPort, upstream: "app", servers: [TestPort.refusingAddress, "127.0.0.1:\(good.plainPort)"],
                                          settings: "fail_timeout = \"\(failTimeout)\"")
        }
        let tailgate = try TailgateInstance.start(config: config("1h"), in: sandbox)
        func state(of server: String) -> String? {
            let table = Command.run(Sandbox.tailgateBinary, ["status", "--health", "127.0.0.1:\(healthPort)"]).output
            let row = table.split(separator: "\n").first { $0.hasPrefix("app ") && $0.contains(" \(server) ") }
            return row?.split(separator: " ").dropFirst(2).first.map(String.init)
        }
        for _ in 0..<2 { #expect(curl(sandbox, host: "app.example.com", port: port).output == "good  app.example.com\n") }
        #expect(tailgate.process.output.contains("error=\"connect: Connection refused (errno 111)\""), "\(tailgate.process.output)")
        #expect(state(of: TestPort.refusingAddress) == "skipped")
        #expect(try tailgate.reload(config("0s")))
        #expect(state(of: TestPort.refusingAddress) == "unchecked")
    }

    @Test(arguments: RelayMode.allCases)
    func aServerThatResetsMidStreamClosesTheClientAndLeaksNothing(relay: RelayMode) throws {
        let sandbox = try Sandbox("upstream-reset-\(relay)")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let server = try RawServer(.replyThenReset(after: hello.count, reply: "a partial answer", pause: 0.3))
        let (tailgate, port, rawPort, baseline) = try HostileSetup.startWithRawListener(relay, sandbox, servers: [server.port])
        let pid = tailgate.process.pid

        let client = try RawClient(host: "127.0.0.1", port: rawPort, source: "127.0.0.70")
        client.send(hello)
        let answer = client.receive(atLeast: 16, timeout: 5)
        #expect(String(decoding: answer, as: UTF8.self) == "a partial answer")
        // Nothing else would close it for ten minutes (the default idle_timeout).
        #expect(client.waitForClose(timeout: 10), "the client was not closed within 10 s of the answer")
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.70:"])
        #expect(line?.contains("bytes_out=16 ") == true, "\(line ?? "no line")")
        #expect(line?.contains("outcome=reset reason=\"upstream: ") == true, "\(line ?? "no line")")

        #expect(HostileSetup.serves(sandbox, port))
        let after = HostileSetup.socketsReturn(to: baseline, pid: pid)
        #expect(after.sockets == baseline.sockets, "descriptors after: \(after); before: \(baseline)")
        #expect(tailgate.connectionLines(client: "127.0.0.70").count == 1)
    }

    /// A server that closes while the client's bytes are still unread sends a reset instead of a FIN (nginx
    /// avoids it with lingering_close; not every server does): what it wrote just before must still arrive.
    @Test(arguments: RelayMode.allCases)
    func whatAServerWroteJustBeforeItsResetStillReachesTheClient(relay: RelayMode) throws {
        let sandbox = try Sandbox("reset-after-write-\(relay)")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let answer = String(repeating: "x", count: 100_000)
        let servers = try (0..<10).map { _ in try RawServer(.replyThenReset(after: hello.count, reply: answer, pause: 0)) }
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(relay: relay, config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "raw"
            [upstreams.raw]
            servers = [\(servers.map { "\"127.0.0.1:\($0.port)\"" }.joined(separator: ", "))]
            """, in: sandbox)
        var received: [Int] = []
        for index in 0..<10 {
            let client = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.\(80 + index)")
            client.send(hello)
            // Everything until the connection ends (EOF or reset).
            received.append(client.receive(atLeast: answer.utf8.count + 1, timeout: 5).count)
        }
        #expect(received == [Int](repeating: answer.utf8.count, count: 10), "\(received)")
        for index in 0..<10 {
            let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.\(80 + index):"])
            #expect(line?.contains("outcome=reset reason=\"upstream: ") == true, "\(line ?? "no line")")
        }
    }

    @Test(arguments: RelayMode.allCases)
    func whenEveryServerIsDownTheClientIsClosedPromptlyAsUpstreamUnavailable(relay: RelayMode) throws {
        let sandbox = try Sandbox("all-down-\(relay)")
        defer { sandbox.tearDown() }
        let hole = try BlackHoleListener()
        let refusedA = TestPort.free(), refusedB = TestPort.free()
        let port = TestPort.free(), refusingPort = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try TailgateInstance.start(relay: relay, config: """
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.down]
            bind = ["127.0.0.1:\(port)"]
            default = "down"
            [listeners.refusing]
            bind = ["127.0.0.1:\(refusingPort)"]
            default = "refusing"
            [upstreams.down]
            servers = ["127.0.0.1:\(refusedA)", "127.0.0.1:\(hole.port)", "127.0.0.1:\(refusedB)"]
            connect_timeout = "500ms"
            [upstreams.refusing]
            servers = ["127.0.0.1:\(refusedA)", "127.0.0.1:\(refusedB)"]
            connect_timeout = "500ms"
            """, in: sandbox)
        let pid = tailgate.process.pid
        // Two listeners, the health endpoint and the agent's duplicate of its socket (kept for a hand-over).
        let baseline = HostileSetup.atRest(pid, listening: 4)
        let hello = try Captures.load("openssl-sni-alpn.bin")

        // Two refusals and one connect_timeout, in every order round robin gives.
        for source in ["127.0.0.71", "127.0.0.72", "127.0.0.73"] {
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            let start = Date()
            client.send(hello)
            #expect(client.waitForClose(timeout: 5), "\(source)")
            let elapsed = Date().timeIntervalSince(start)
            #expect(elapsed >= 0.45, "\(source): closed after \(elapsed) s")
            let line = tailgate.waitForConnectionLine(containing: ["client=\(source):"])
            #expect(line?.contains("upstream=down") == true && line?.contains("outcome=upstream_unavailable reason=\"127.0.0.1:") == true,
                    "\(line ?? "no line")")
            // One connect_timeout, not two, by the agent's own clock.
            #expect(line.flatMap { HostileBytes.field("duration_ms", in: $0) }.map { (450..<1_000).contains($0) } == true, "\(line ?? "no line")")
        }
        // Only refusals: closed at once.
        let refused = try RawClient(host: "127.0.0.1", port: refusingPort, source: "127.0.0.74")
        refused.send(hello)
        #expect(refused.waitForClose(timeout: 5))
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.74:"])
        #expect(line?.contains("outcome=upstream_unavailable") == true && line?.contains("Connection refused") == true, "\(line ?? "no line")")
        // Nothing waited out connect_timeout (500 ms), by the agent's own clock.
        #expect(line.flatMap { HostileBytes.field("duration_ms", in: $0) }.map { $0 < 500 } == true, "\(line ?? "no line")")

        let metrics = HealthIntegrationTests.parsedMetrics(healthPort).samples
        func failures(_ upstream: String, _ server: Int) -> Double? {
            metrics["tailgate_upstream_connect_failures_total{server=\"127.0.0.1:\(server)\",upstream=\"\(upstream)\"}"]
        }
        #expect(failures("down", refusedA) == 3 && failures("down", hole.port) == 3 && failures("down", refusedB) == 3)
        #expect(failures("refusing", refusedA) == 1 && failures("refusing", refusedB) == 1)
        #expect(Poll.until(timeout: 5) { hole.pendingConnects == 0 })
        let after = HostileSetup.socketsReturn(to: baseline, pid: pid)
        #expect(after.sockets == baseline.sockets, "descriptors after: \(after); before: \(baseline)")
        for source in ["127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74"] {
            #expect(tailgate.connectionLines(client: source).count == 1, "\(source)")
        }
    }
}
