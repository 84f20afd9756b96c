import Foundation
import TailgateTestSupport
import Testing

/// Upstream servers written as names that do not resolve yet (a MagicDNS name at boot, before tailscaled):
/// tailgate starts anyway, with those servers down, and follows the name once it resolves and when its
/// address changes. The agent runs in a mount namespace of its own whose /etc/hosts is a file of the test's.
@Suite(.serialized, .enabled(if: getuid() == 0 && Command.executable(named: "unshare") != nil, "needs root for a mount namespace"))
struct LateNameTests {
    @Test func aNameThatDoesNotResolveYetStopsNothingAndIsFollowedOnceItDoes() throws {
        let unshare = try #require(Command.executable(named: "unshare"))
        let sandbox = try Sandbox("late-name")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let server = try ConversationServer(threads: 2) { $0.pingPong(helloLength: hello.count) }
        defer { server.stop() }
        let hosts = sandbox.path("hosts")
        try "127.0.0.1 localhost\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let port = TestPort.free(), healthPort = TestPort.free()
        let name = "ops-host.tail1234.ts.net"
        try sandbox.write("tailgate.toml", """
            [global]
            resolve_interval = "1s"
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.edge]
            bind = ["127.0.0.1:\(port)"]
            default = "ops"
            [upstreams.ops]
            servers = ["\(name):\(server.port)"]
            """)

        // `check` (the unit's ExecStartPre) warns, at the line, and passes the file.
        let check = Command.run(unshare, ["--mount", "sh", "-c", "mount --bind \(hosts) /etc/hosts && exec \(Sandbox.tailgateBinary) check --config \(sandbox.path("tailgate.toml"))"])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("tailgate.toml:9:12: upstreams.ops.servers[0]: warning: cannot resolve \"\(name)\""), "\(check.output)")

        let process = try sandbox.start("tailgate", unshare, ["--mount", "sh", "-c",
            "mount --bind \(hosts) /etc/hosts && exec \(Sandbox.tailgateBinary) run --config \(sandbox.path("tailgate.toml"))"])
        #expect(process.waitForOutput(" ready ", timeout: 30), "\(process.output)")
        let tailgate = TailgateInstance(process: process, configPath: sandbox.path("tailgate.toml"))
        #expect(process.output.contains("warning: cannot resolve \"\(name)\""), "\(process.output)")
        #expect(TestPort.waitUntilAccepting(healthPort))
        let notReady = HealthIntegrationTests.http(healthPort, "/readyz")
        #expect(notReady.code == "503" && notReady.body.contains(name), "\(notReady)")
        #expect(HealthIntegrationTests.http(healthPort, "/status").body.contains("\"address\":\"\(name):\(server.port)\",\"state\":\"unresolved\""))
        // Meanwhile a client is closed at once, with a reason in the log.
        #expect(PingPong.exchangeOnce(port: port, hello: hello) == nil)
        #expect(process.waitForOutput("no server of the upstream has an address yet"), "\(process.output)")

        // The name resolves (written in place: the bind mount follows the file's inode).
        try Self.rewrite(hosts, "127.0.0.1 localhost\n127.0.0.1 \(name)\n")
        #expect(Poll.until(timeout: 20) { PingPong.exchangeOnce(port: port, hello: hello) != nil }, "\(process.output.suffix(2_000))")
        #expect(tailgate.waitForConnectionLine(containing: ["upstream=ops", "server=127.0.0.1:\(server.port)", "outcome=closed"]) != nil)
        #expect(Poll.until(timeout: 10) { HealthIntegrationTests.http(healthPort, "/readyz").code == "200" })

        // The address changes: followed within resolve_interval, without a reload.
        try Self.rewrite(hosts, "127.0.0.1 localhost\n127.0.0.2 \(name)\n")
        #expect(process.waitForOutput("now=127.0.0.2:\(server.port) was=127.0.0.1:\(server.port)", timeout: 20), "\(process.output.suffix(2_000))")
        _ = PingPong.exchangeOnce(port: port, hello: hello)
        #expect(tailgate.waitForConnectionLine(containing: ["upstream=ops", "server=127.0.0.2:\(server.port)"]) != nil, "\(process.output.suffix(2_000))")
        #expect(!process.output.contains(" reloaded "))
    }

    /// Replaces the file's bytes without replacing the file (a bind mount names the inode).
    static func rewrite(_ path: String, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }
}
