import Foundation
import TailgateTestSupport
import Testing

/// Process-wide limits: `[global] max_connections` and running out of file descriptors.
@Suite(.serialized) struct LimitsIntegrationTests {
    @Test func theGlobalLimitCapsConnectionsOverAllListenersAndFreesSlotsAsTheyClose() throws {
        let sandbox = try Sandbox("global-limit")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let first = TestPort.free(), second = TestPort.free(), health = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [global]
            max_connections = 2
            [health]
            listen = "127.0.0.1:\(health)"
            [listeners.one]
            bind = ["127.0.0.1:\(first)"]
            default = "app"
            client_hello_timeout = "20s"
            [listeners.two]
            bind = ["127.0.0.1:\(second)"]
            default = "app"
            client_hello_timeout = "20s"
            [upstreams.app]
            servers = ["127.0.0.1:\(app.proxyPort)"]
            send_proxy = "v2"
            """, in: sandbox)
        #expect(tailgate.process.output.contains("max_connections=2"))
        let held = [try RawClient(host: "127.0.0.1", port: first), try RawClient(host: "127.0.0.1", port: first)]
        // Both accepted before the third arrives on the other listener (two accept queues: no order between them).
        #expect(Poll.until(timeout: 10) {
            HealthIntegrationTests.parsedMetrics(health).samples["tailgate_connections_active{listener=\"one\"}"] == 2
        })
        // The other listener is under its own limit, but the process is full.
        let refused = try RawClient(host: "127.0.0.1", port: second)
        #expect(refused.waitForClose(timeout: 3))
        #expect(tailgate.process.waitForOutput("the agent is at [global] max_connections"))
        let samples = HealthIntegrationTests.parsedMetrics(health).samples
        #expect(samples["tailgate_connections_ended_total{listener=\"two\",outcome=\"over_limit\",route=\"none\"}"] == 1)
        #expect(held.allSatisfy { !$0.waitForClose(timeout: 0.3) })
        held[0].close()
        #expect(Poll.until(timeout: 10) {
            curl(sandbox, host: "app.example.com", port: second).output == "app 127.0.0.1 app.example.com\n"
        })
        held[1].close()
    }

    /// A global limit the descriptors cannot carry is said at start, with the numbers.
    @Test func aGlobalLimitBeyondTheOpenFileLimitIsWarnedAbout() throws {
        let sandbox = try Sandbox("limit-beyond")
        defer { sandbox.tearDown() }
        try sandbox.write("tailgate.toml", """
            [global]
            max_connections = 5000
            [listeners.public]
            bind = ["127.0.0.1:\(TestPort.free())"]
            default = "app"
            [upstreams.app]
            servers = ["\(TestPort.refusingAddress)"]
            """)
        let tailgate = try sandbox.start(
            "tailgate", "/usr/bin/prlimit", ["--nofile=1024:1024", Sandbox.tailgateBinary, "run", "--config", sandbox.path("tailgate.toml")]
        )
        #expect(Poll.until(timeout: 30) { tailgate.output.contains(" ready ") })
        #expect(tailgate.output.contains("[global] max_connections is more than the open-file limit can carry"), "\(tailgate.output)")
        // (1024 − the agent's reserve of 768) / 3 = 85.
        #expect(tailgate.output.contains("carried=85 max_connections=5000 open_file_limit=1024"), "\(tailgate.output)")
    }

    @Test func runningOutOfDescriptorsPausesAcceptingWithoutSpinningAndServiceResumes() throws {
        let sandbox = try Sandbox("fd-exhaustion")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free()
        let configPath = sandbox.path("tailgate.toml")
        try sandbox.write("tailgate.toml", """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            client_hello_timeout = "30s"
            [upstreams.app]
            servers = ["127.0.0.1:\(app.proxyPort)"]
            send_proxy = "v2"
            """)
        let tailgate = try sandbox.start(
            "tailgate", "/usr/bin/prlimit", ["--nofile=64:64", Sandbox.tailgateBinary, "run", "--config", configPath]
        )
        #expect(Poll.until(timeout: 30) { tailgate.output.contains(" ready ") })
        #expect(curl(sandbox, host: "app.example.com", port: port).output == "app 127.0.0.1 app.example.com\n")
        // Idle connections (no ClientHello yet) until the agent cannot accept any more.
        var idle: [RawClient] = []
        for _ in 0..<90 {
            if let client = try? RawClient(host: "127.0.0.1", port: port) { idle.append(client) }
        }
        #expect(tailgate.waitForOutput("cannot accept: out of file descriptors", timeout: 10))
        // Paused, not spinning on a listener that stays readable: an accept loop that spins takes a whole core,
        // a paused one tries again four times a second. Under a tenth of a core, over a window whose length is
        // measured (a busy machine stretches it, and the retries with it).
        let before = cpuSeconds(tailgate.pid)
        let opened = ContinuousClock.now
        usleep(2_000_000)
        let used = cpuSeconds(tailgate.pid) - before
        let window = (ContinuousClock.now - opened) / .seconds(1)
        #expect(used < window / 10, "\(used) s of CPU in \(window) s")
        for client in idle { client.close() }
        #expect(Poll.until(timeout: 15) {
            curl(sandbox, host: "app.example.com", port: port).output == "app 127.0.0.1 app.example.com\n"
        })
    }
}
