import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// What the hostile-client and upstream-failure suites share: a tailgate in front of nginx, a check that it
/// still serves, and the descriptors of the agent at rest.
enum HostileSetup {
    /// A tailgate with one listener in front of an nginx that answers `app  app.example.com`.
    static func startWithNginx(
        _ relay: RelayMode, _ sandbox: Sandbox, listener: String = "", more: String = ""
    ) throws -> (tailgate: TailgateInstance, port: Int) {
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(relay: relay, config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            \(listener)
            [upstreams.app]
            servers = ["127.0.0.1:\(app.plainPort)"]
            \(more)
            """, in: sandbox)
        return (tailgate, port)
    }

    /// `startWithNginx` plus a second listener, `raw`, relaying to `servers` (scripted upstreams), after four
    /// requests through the first; also returns the raw listener's port and the agent's descriptors at rest.
    static func startWithRawListener(
        _ relay: RelayMode, _ sandbox: Sandbox, servers: [Int]
    ) throws -> (tailgate: TailgateInstance, port: Int, rawPort: Int, baseline: DescriptorCount) {
        let rawPort = TestPort.free()
        let (tailgate, port) = try startWithNginx(relay, sandbox, more: """
            [listeners.raw]
            bind = ["127.0.0.1:\(rawPort)"]
            default = "raw"
            [upstreams.raw]
            servers = [\(servers.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]
            """)
        for _ in 0..<4 { #expect(serves(sandbox, port)) }
        return (tailgate, port, rawPort, atRest(tailgate.process.pid, listening: 2))
    }

    /// A real TLS connection through `port` works (curl, verified against the sandbox CA).
    static func serves(_ sandbox: Sandbox, _ port: Int) -> Bool {
        curl(sandbox, host: "app.example.com", port: port).output == "app  app.example.com\n"
    }

    /// Whether a connection-log line blames the client for the end: `client_closed_early`, or `error` with a
    /// client-side reason. (A reset before routing is logged as the first by the splice relay and as the
    /// second by the copy relay, whose relay handler already sits in the pipeline during admission.)
    static func endedByClient(_ line: String?) -> Bool {
        guard let line else { return false }
        return line.contains("outcome=client_closed_early") || line.contains("outcome=reset reason=\"client: ")
    }

    /// The descriptors of a process at rest: once it holds only its `listening` sockets (connections just
    /// ended may still be closing when a client has seen its answer).
    static func atRest(_ pid: Int32, listening: Int) -> DescriptorCount {
        var now = openDescriptors(pid)
        let settled = Poll.until(timeout: 10) {
            now = openDescriptors(pid)
            return now.sockets == listening
        }
        #expect(settled, "expected \(listening) listening sockets at rest, found \(now)")
        return now
    }

    /// Waits until the process holds as many sockets as in `baseline`; returns what it holds then.
    static func socketsReturn(to baseline: DescriptorCount, pid: Int32, timeout: Double = 10) -> DescriptorCount {
        var now = openDescriptors(pid)
        _ = Poll.until(timeout: timeout) {
            now = openDescriptors(pid)
            return now.sockets == baseline.sockets
        }
        return now
    }

    /// Each of these clients is logged as having ended its connection, not as a transfer that finished normally.
    static func expectEndedByClient(_ tailgate: TailgateInstance, sources: [String]) {
        for source in sources {
            let line = tailgate.connectionLines(client: source).first
            #expect(endedByClient(line), "\(line ?? "no line for \(source)")")
        }
    }
}

/// Raises this process's soft open-file limit to the hard limit (spawned tailgates inherit it).
func raiseDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
