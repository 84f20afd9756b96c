import Foundation
import TailgateTestSupport
import Testing

/// Listening sockets that outlive the process: taken back from systemd (`LISTEN_FDS`, what the unit's file
/// descriptor store gives a restarted agent) and handed to a new binary on SIGUSR2 (an upgrade).
@Suite(.serialized)
struct SocketHandOverTests {
    /// systemd-socket-activate passes two sockets, as the store would after a restart: one the file still
    /// names, one a changed file dropped; the file also names a bind that was not passed. A client that
    /// connected before the agent ran is served from the kept backlog; exactly the configured binds listen.
    @Test func socketsPassedInAreTakenBackAndOnlyTheConfiguredOnesStayOpen() throws {
        let activate = try #require(Command.executable(named: "systemd-socket-activate"), "the Debian package systemd (scripts/install-deps)")
        let sandbox = try Sandbox("listen-fds")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let server = try ConversationServer(threads: 4) { $0.pingPong(helloLength: hello.count) }
        defer { server.stop() }
        let kept = TestPort.free(), dropped = TestPort.free(), added = TestPort.free()
        try sandbox.write("tailgate.toml", """
            [listeners.a]
            bind = ["127.0.0.1:\(kept)", "127.0.0.1:\(added)"]
            default = "u"
            [upstreams.u]
            servers = ["127.0.0.1:\(server.port)"]
            """)
        let process = try sandbox.start("tailgate", activate, [
            "-l", "127.0.0.1:\(kept)", "-l", "127.0.0.1:\(dropped)", "--fdname=listen_127.0.0.1_\(kept):listen_127.0.0.1_\(dropped)",
            Sandbox.tailgateBinary, "run", "--config", sandbox.path("tailgate.toml"),
        ])
        // systemd-socket-activate starts the agent at the first connection, which waits in the backlog meanwhile.
        #expect(TestPort.waitUntilAccepting(kept))
        let early = try RawClient(host: "127.0.0.1", port: kept)
        #expect(early.send(hello) && early.receive(atLeast: 4, timeout: 30) == Array("ack\n".utf8), "\(process.output)")
        _ = early.send("bye\n")
        early.close()
        #expect(process.waitForOutput(" ready ", timeout: 30), "\(process.output)")
        #expect(process.output.contains("took over listening sockets closed_unconfigured=1 from=\"systemd (LISTEN_FDS)\" passed_in=2"), "\(process.output)")
        #expect(process.output.contains("closed a listening socket passed in that the configuration no longer names bind=127.0.0.1:\(dropped)"), "\(process.output)")
        #expect(PingPong.exchangeOnce(port: kept, hello: hello) != nil)
        #expect(PingPong.exchangeOnce(port: added, hello: hello) != nil)
        #expect(!TestPort.acceptsConnections(dropped), "a bind the file no longer names must be closed")
        let listening = try Command.check("ss", ["-ltnH", "-p"]).split(separator: "\n").filter { $0.contains("pid=\(process.pid),") }
        #expect(listening.count == 2, "\(listening)")
    }

    /// SIGUSR2 under a stream of short connections and a few long ones: the new process takes the sockets,
    /// no connection is refused or broken, the long ones finish in the old process, which then exits.
    @Test func anUpgradeHandOverRefusesAndCutsNothing() throws {
        let sandbox = try Sandbox("hand-over")
        defer { sandbox.tearDown() }
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let server = try ConversationServer(threads: 32) { $0.pingPong(helloLength: hello.count) }
        defer { server.stop() }
        let port = TestPort.free(), healthPort = TestPort.free()
        let old = try TailgateInstance.start(config: """
            [global]
            drain_timeout = "60s"
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.a]
            bind = ["127.0.0.1:\(port)"]
            default = "u"
            [upstreams.u]
            servers = ["127.0.0.1:\(server.port)"]
            """, in: sandbox)
        let long = try PingPong.open(4, port: port, hello: hello)
        #expect(PingPong.exchange(long, round: 0).isEmpty)

        let running = ManagedFlag()
        let counts = NSLock()
        nonisolated(unsafe) var succeeded = 0, failed: [String] = []
        let loop = Thread {
            while running.isSet {
                let ok = PingPong.exchangeOnce(port: port, hello: hello) != nil
                counts.lock(); if ok { succeeded += 1 } else { failed.append("at \(succeeded)") }; counts.unlock()
            }
        }
        running.set(true)
        loop.start()
        Thread.sleep(forTimeInterval: 0.5)
        old.process.signal(SIGUSR2)
        #expect(old.process.waitForOutput("upgrade: handed over to the new process; draining", timeout: 60), "\(old.process.output)")
        let successor = old.process.output.split(separator: "\n").first { $0.contains("upgrade: handed over") }
            .flatMap { $0.split(separator: "pid=").last.flatMap { Int32($0) } }
        defer { if let successor { kill(successor, SIGTERM) } }
        #expect(successor != nil)
        Thread.sleep(forTimeInterval: 1)
        // The long connections are the old process's: still served while it drains.
        #expect(PingPong.exchange(long, round: 1).isEmpty)
        #expect(old.process.isRunning, "the old process drains its connections")
        running.set(false)
        while !loop.isFinished { Thread.sleep(forTimeInterval: 0.05) }
        counts.lock(); let (total, broken) = (succeeded, failed); counts.unlock()
        #expect(broken.isEmpty, "\(broken.count) of \(total + broken.count) short connections failed across the hand-over: \(broken.prefix(5))")
        #expect(total > 20)
        for client in long { _ = client.send("bye\n"); client.close() }
        #expect(old.process.waitForExit(timeout: 30), "the old process exits once its connections are done")
        #expect(old.process.exitStatus == 0)
        // The successor serves the listener and the health endpoint.
        #expect(PingPong.exchangeOnce(port: port, hello: hello) != nil)
        #expect(HealthIntegrationTests.http(healthPort, "/healthz").code == "200")
        if let successor {
            #expect(kill(successor, 0) == 0, "the successor runs")
        }
    }
}

/// A flag threads share.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ newValue: Bool) { lock.lock(); value = newValue; lock.unlock() }
}
