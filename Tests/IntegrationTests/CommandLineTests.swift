import Foundation
import TailgateTestSupport
import Testing

/// `tailgate check` and `run` as an operator uses them.
struct CommandLineTests {
    @Test func checkAcceptsTheShippedConfigs() throws {
        for name in ["tailgate.toml", "default.toml"] {
            let result = Command.run(Sandbox.tailgateBinary, ["check", "--config", "\(Sandbox.repositoryRoot)/conf/\(name)"])
            #expect(result.status == 0, "\(name): \(result.output)")
            #expect(!result.output.contains("warning"), "\(name): \(result.output)")
        }
    }

    /// Valid but probably not meant: `check` says so and passes; `run` logs it.
    @Test func warningsAreShownAndDoNotRefuseTheFile() throws {
        let sandbox = try Sandbox("check-warnings")
        defer { sandbox.tearDown() }
        try sandbox.write("warn.toml", """
            [listeners.a]
            bind = ["127.0.0.1:\(TestPort.free())"]
            default = "u"
            [upstreams.u]
            servers = ["\(TestPort.refusingAddress)"]
            check_ca = "/etc/ssl/certs/ca-certificates.crt"
            """)
        let check = Command.run(Sandbox.tailgateBinary, ["check", "--config", sandbox.path("warn.toml")])
        #expect(check.status == 0)
        #expect(check.output.contains(":6:12: upstreams.u.check_ca: warning: has no effect unless check = \"tls\" or \"https\""), "\(check.output)")
        #expect(check.output.contains("configuration is valid (1 warnings)"))
        let tailgate = try TailgateInstance.start(config: try String(contentsOfFile: sandbox.path("warn.toml"), encoding: .utf8), in: sandbox)
        #expect(tailgate.process.output.contains("warning \(tailgate.configPath):6:12: upstreams.u.check_ca: warning: has no effect"),
                "\(tailgate.process.output)")
    }

    @Test func checkListsEveryErrorWithFileLineAndColumn() throws {
        let sandbox = try Sandbox("check")
        defer { sandbox.tearDown() }
        try sandbox.write("bad.toml", """
            [listeners.public]
            bind = ["0.0.0.0:443"]
            default = "servcie"
            client_hello_timeout = "5 seconds"

            [upstreams.service]
            servers = ["10.0.0.1:70000"]
            """)
        let result = Command.run(Sandbox.tailgateBinary, ["check", "--config", sandbox.path("bad.toml")])
        #expect(result.status == 1)
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("\(sandbox.path("bad.toml")):3:11: listeners.public.default: unknown upstream \"servcie\"; did you mean \"service\"?") == true)
        #expect(lines.contains { $0.contains(":4:24: listeners.public.client_hello_timeout: invalid duration") })
        #expect(lines.contains { $0.contains(":7:12: upstreams.service.servers[0]: \"10.0.0.1:70000\" has an invalid port") })
    }

    /// What only the running system can tell (names, files) is reported in one pass, at its line.
    @Test func checkReportsUnresolvableNamesAndUnusableCAFilesTogether() throws {
        let sandbox = try Sandbox("check-system")
        defer { sandbox.tearDown() }
        try sandbox.write("notpem.pem", "not a certificate\n")
        try sandbox.write("system.toml", """
            [listeners.public]
            bind = ["127.0.0.1:\(TestPort.free())"]
            [listeners.public.routes]
            "app.example.com" = "app"
            "ops.example.com" = "ops"
            [upstreams.app]
            servers = ["127.0.0.1:1", "nothing.invalid:443"]
            check = "tls"
            check_ca = "\(sandbox.path("missing.pem"))"
            [upstreams.ops]
            servers = ["127.0.0.1:2"]
            check = "tls"
            check_ca = "\(sandbox.path("notpem.pem"))"
            """)
        let result = Command.run(Sandbox.tailgateBinary, ["check", "--config", sandbox.path("system.toml")])
        #expect(result.status == 1)
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(result.output)")
        // A name is a warning (the agent starts without it); without a reachable DNS server the reason is
        // EAI_AGAIN's instead.
        #expect(lines.contains {
            $0.contains(":7:27: upstreams.app.servers[1]: warning: cannot resolve \"nothing.invalid\" (Name or service not known)")
                || $0.contains(":7:27: upstreams.app.servers[1]: warning: cannot resolve \"nothing.invalid\" (Temporary failure in name resolution)")
        }, "\(result.output)")
        #expect(lines.contains { $0.contains(":9:12: upstreams.app.check_ca: cannot load CA file \(sandbox.path("missing.pem")): No such file") })
        #expect(lines.contains { $0.contains(":13:12: upstreams.ops.check_ca: cannot load CA file \(sandbox.path("notpem.pem")): ") })
    }

    @Test func aWorldWritableConfigIsRefused() throws {
        let sandbox = try Sandbox("world-writable")
        defer { sandbox.tearDown() }
        try sandbox.write("open.toml", "[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\n")
        chmod(sandbox.path("open.toml"), 0o666)
        let result = Command.run(Sandbox.tailgateBinary, ["check", "--config", sandbox.path("open.toml")])
        #expect(result.status == 1)
        #expect(result.output.contains("refusing a world-writable configuration file"))
        chmod(sandbox.path("open.toml"), 0o644)
        #expect(Command.run(Sandbox.tailgateBinary, ["check", "--config", sandbox.path("open.toml")]).status == 0)
    }

    @Test func checkReportsAMissingFile() {
        let result = Command.run(Sandbox.tailgateBinary, ["check", "--config", "/nonexistent/tailgate.toml"])
        #expect(result.status == 1)
        #expect(result.output.contains("/nonexistent/tailgate.toml:1:1: cannot open: No such file or directory"))
    }

    /// A directory or a device is refused for what it is (a device is not "world-writable, chmod it"); a
    /// config piped in through /dev/stdin is read.
    @Test func checkSaysWhatIsNotAConfigurationFileAndReadsAPipe() throws {
        let sandbox = try Sandbox("not-a-file")
        defer { sandbox.tearDown() }
        let directory = Command.run(Sandbox.tailgateBinary, ["check", "--config", sandbox.path("")])
        #expect(directory.status == 1)
        #expect(directory.output.contains("is a directory, not a configuration file"), "\(directory.output)")
        let device = Command.run(Sandbox.tailgateBinary, ["check", "--config", "/dev/zero"], timeout: 10)
        #expect(device.status == 1)
        #expect(device.output.contains("/dev/zero:1:1: is a device, not a configuration file"), "\(device.output)")

        try sandbox.write("good.toml", "[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\n")
        let piped = Command.run("/bin/sh", ["-c", "cat \(sandbox.path("good.toml")) | \(Sandbox.tailgateBinary) check --config /dev/stdin"])
        #expect(piped.status == 0, "\(piped.output)")
    }

    /// `status` says when the address is not tailgate's endpoint, or not an address at all, instead of
    /// printing whatever answered.
    @Test func statusRefusesWhatIsNotTailgatesEndpoint() throws {
        let stranger = try RawServer(.replyThenReset(after: 10, reply: "HTTP/1.1 200 OK\r\n\r\n<html>hello</html>", pause: 0.2))
        let answer = Command.run(Sandbox.tailgateBinary, ["status", "--health", "http://127.0.0.1:\(stranger.port)"], timeout: 20)
        #expect(answer.status == 1)
        #expect(answer.output.contains("not as tailgate's health endpoint does"), "\(answer.output)")
        #expect(!answer.output.contains("<html>"))
        let port = Command.run(Sandbox.tailgateBinary, ["status", "--health", "http://127.0.0.1:99999"], timeout: 20)
        #expect(port.status == 1)
        #expect(port.output.contains("invalid port \"99999\""), "\(port.output)")
        // A port that never answers (SYNs dropped) is said to time out, not "Operation now in progress".
        let hole = try BlackHoleListener()
        let silent = Command.run(Sandbox.tailgateBinary, ["status", "--health", "127.0.0.1:\(hole.port)"], timeout: 20)
        #expect(silent.status == 1)
        #expect(silent.output.contains("cannot reach http://127.0.0.1:\(hole.port): no answer within 5 s"), "\(silent.output)")
    }

    /// `tailgate reload --pid` (the unit's ExecReload): a valid file is checked and the agent told to reload
    /// it; a bad one is refused with its errors and the agent is not signalled; an unknown process is an error.
    @Test func reloadChecksTheFileThenSignalsTheAgentItself() throws {
        let sandbox = try Sandbox("reload-command")
        defer { sandbox.tearDown() }
        let port = TestPort.free(), added = TestPort.free()
        func config(_ ports: [Int]) -> String {
            """
            [listeners.a]
            bind = [\(ports.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]
            default = "u"
            [upstreams.u]
            servers = ["\(TestPort.refusingAddress)"]
            """
        }
        let tailgate = try TailgateInstance.start(config: config([port]), in: sandbox)
        let pid = String(tailgate.process.pid)

        try config([port, added]).write(toFile: tailgate.configPath, atomically: true, encoding: .utf8)
        let good = Command.run(Sandbox.tailgateBinary, ["reload", "--config", tailgate.configPath, "--pid", pid])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("configuration is valid; reload sent to process \(pid)"), "\(good.output)")
        #expect(tailgate.process.waitForOutput("reloaded generation=2"))
        #expect(TestPort.waitUntilAccepting(added), "the added bind listens after the reload")

        let reloadsBefore = tailgate.process.output.components(separatedBy: " reloading config=").count
        try (config([port]) + "\nbogus = 1\n").write(toFile: tailgate.configPath, atomically: true, encoding: .utf8)
        let bad = Command.run(Sandbox.tailgateBinary, ["reload", "--config", tailgate.configPath, "--pid", pid])
        #expect(bad.status == 1)
        #expect(bad.output.contains("unknown key 'bogus'") && bad.output.contains("reload not sent"), "\(bad.output)")
        #expect(tailgate.process.output.components(separatedBy: " reloading config=").count == reloadsBefore,
                "a refused file must not reach the agent")
        #expect(TestPort.acceptsConnections(added), "the agent still serves generation 2")

        let nobody = Command.run(Sandbox.tailgateBinary, ["reload", "--config", sandbox.path("tailgate.toml"), "--pid", "999999999"])
        #expect(nobody.status != 0)
    }

    /// Run by an unprivileged user, as the unit runs it, the short commands start no thread that asks for a
    /// higher priority: libdispatch's "Failed to set thread priority" line (to stderr with LIBDISPATCH_LOG)
    /// came from every `tailgate check` in ExecStartPre when the entry point was async.
    @Test func commandsRunByAnUnprivilegedUserAskForNoPriority() throws {
        guard getuid() == 0, let setpriv = Command.executable(named: "setpriv") else { return }
        let sandbox = try Sandbox("priority")
        defer { sandbox.tearDown() }
        // A copy the unprivileged user can run wherever the build directory is.
        let binary = sandbox.path("tailgate")
        try Command.check("cp", [Sandbox.tailgateBinary, binary])
        try sandbox.write("t.toml", "[listeners.a]\nbind = [\"127.0.0.1:\(TestPort.free())\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:1\"]\n")
        chmod(sandbox.path("t.toml"), 0o644)
        for arguments in [["check", "--config", sandbox.path("t.toml")], ["--version"]] {
            let result = Command.run("env", ["LIBDISPATCH_LOG=stderr", setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", binary] + arguments)
            #expect(result.status == 0, "\(arguments): \(result.output)")
            #expect(!result.output.contains("thread priority"), "\(arguments): \(result.output)")
        }
    }

    @Test func runRefusesABadConfigAndABusyPort() throws {
        let sandbox = try Sandbox("run-refuses")
        defer { sandbox.tearDown() }
        try sandbox.write("bad.toml", "[listeners.a]\nbind = [\"127.0.0.1:1\"]\n")
        let bad = Command.run(Sandbox.tailgateBinary, ["run", "--config", sandbox.path("bad.toml")], timeout: 20)
        #expect(bad.status == 1)
        #expect(bad.output.contains("bad.toml:1:1: listeners.a: listener has neither 'routes' nor 'default'"))

        let holder = try RawListener()
        try sandbox.write("busy.toml", """
            [listeners.a]
            bind = ["127.0.0.1:\(holder.port)"]
            default = "u"
            [upstreams.u]
            servers = ["\(TestPort.refusingAddress)"]
            """)
        let busy = Command.run(Sandbox.tailgateBinary, ["run", "--config", sandbox.path("busy.toml")], timeout: 20)
        #expect(busy.status == 1)
        #expect(busy.output.contains("listener 'a': cannot bind 127.0.0.1:\(holder.port)"))
    }

    @Test func jsonLogLinesCarryTheConnectionFields() throws {
        let sandbox = try Sandbox("json-log")
        defer { sandbox.tearDown() }
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [log]
            format = "json"
            [listeners.a]
            bind = ["127.0.0.1:\(port)"]
            default = "u"
            [upstreams.u]
            servers = ["127.0.0.1:\(TestPort.free())"]
            connect_timeout = "1s"
            """, in: sandbox)
        let client = try RawClient(host: "127.0.0.1", port: port)
        client.send(try Captures.load("curl.bin"))
        #expect(client.waitForClose(timeout: 5))
        let line = tailgate.waitForConnectionLine(containing: ["\"outcome\":\"upstream_unavailable\""])
        let object = try line.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(object?["listener"] as? String == "a")
        #expect(object?["sni"] as? String == "www.example.test")
        #expect(object?["bytes_in"] as? Int == 517)
        #expect(object?["upstream"] as? String == "u")
    }
}

/// A listening socket held by the test, to make a port busy.
final class RawListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        listen(fd, 16)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
