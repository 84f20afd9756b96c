import Foundation
import TailgateConfig
import TailgateTestSupport
import Testing

/// SIGHUP reloads as transactions, with real clients in flight.
@Suite(.serialized)
struct ReloadIntegrationTests {
    @Test func brokenConfigsAreRefusedAndTheOldRoutesKeepServing() throws {
        let sandbox = try Sandbox("reload-broken")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["ops.example.com"])
        let ops = try NginxUpstream.start("ops", in: sandbox)
        let port = TestPort.free()
        let good = """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            [listeners.public.routes]
            "ops.example.com" = "ops"
            [upstreams.ops]
            servers = ["127.0.0.1:\(ops.proxyPort)"]
            send_proxy = "v2"
            """
        let tailgate = try TailgateInstance.start(config: good, in: sandbox)
        let broken = [
            ("syntax", good + "\n[upstreams.ops\n", ":8:"),
            ("unknown upstream", good.replacingOccurrences(of: "= \"ops\"", with: "= \"opz\""), "unknown upstream \"opz\""),
            ("bad duration", good + "\nconnect_timeout = \"3\"\n", "connect_timeout: invalid duration"),
            ("missing file", nil, "cannot open"),
        ]
        for (kind, text, expected) in broken {
            if let text {
                #expect(try tailgate.reload(text) == false, "\(kind) must be refused")
            } else {
                try FileManager.default.removeItem(atPath: tailgate.configPath)
                tailgate.process.signal(SIGHUP)
                #expect(tailgate.process.waitForOutput("reload: \(tailgate.configPath):1:1: cannot open"))
            }
            #expect(tailgate.process.output.contains(expected), "\(kind): \(expected)")
            #expect(tailgate.process.isRunning)
            #expect(curl(sandbox, host: "ops.example.com", port: port).output == "ops 127.0.0.1 ops.example.com\n", "\(kind)")
        }
        #expect(tailgate.process.output.contains("reload failed; still serving the previous configuration errors=1 generation=1"))
        #expect(try tailgate.reload(good))
        #expect(tailgate.process.output.contains("reloaded generation=2"))
    }

    /// `[log]` follows reloads like the rest of the file: the level and the format change for every logger,
    /// those of listeners already open included. `[health] listen` does not, and a reload that changes it
    /// says so.
    @Test func aReloadAppliesTheLogTableAndSaysWhenTheHealthAddressNeedsARestart() throws {
        let sandbox = try Sandbox("reload-log")
        defer { sandbox.tearDown() }
        let port = TestPort.free(), healthPort = TestPort.free()
        func config(_ log: String, health: Int) -> String {
            """
            \(log)
            [health]
            listen = "127.0.0.1:\(health)"
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "nowhere"
            [upstreams.nowhere]
            servers = ["\(TestPort.refusingAddress)"]
            """
        }
        func knock(from source: String) throws {
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            client.send("hello?")
            #expect(client.waitForClose(timeout: 5))
        }
        let tailgate = try TailgateInstance.start(config: config("", health: healthPort), in: sandbox)
        try knock(from: "127.0.0.80")
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.80:", "outcome=bad_client_hello"]) != nil)

        // At level warning (and in JSON) the helper's "reloaded" line is not there to wait for: /status says.
        func reload(_ text: String, generation: Int) throws {
            try text.write(toFile: tailgate.configPath, atomically: true, encoding: .utf8)
            tailgate.process.signal(SIGHUP)
            #expect(Poll.until(timeout: 10) {
                HealthIntegrationTests.http(healthPort, "/status").body.contains("\"generation\":\(generation)")
            })
        }
        try reload(config("[log]\nlevel = \"warning\"", health: healthPort), generation: 2)
        try knock(from: "127.0.0.81")
        try reload(config("[log]\nformat = \"json\"", health: healthPort), generation: 3)
        try knock(from: "127.0.0.82")
        #expect(Poll.until(timeout: 10) { tailgate.process.output.contains("\"client\":\"127.0.0.82:") })
        // 81's line, had it been written at info, would have come before 82's.
        #expect(!tailgate.process.output.contains("127.0.0.81:"), "\(tailgate.process.output)")
        #expect(!tailgate.process.output.contains("[health] listen changed"))

        try reload(config("", health: TestPort.free()), generation: 4)
        #expect(tailgate.process.output.contains("[health] listen changed; the health endpoint keeps its addresses until tailgate restarts"))
        #expect(HealthIntegrationTests.http(healthPort, "/healthz").code == "200")
    }

    @Test func aNewBindOnABusyPortRollsBackTheWholeReload() throws {
        let sandbox = try Sandbox("reload-busy")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["ops.example.com"])
        let ops = try NginxUpstream.start("ops", in: sandbox)
        let port = TestPort.free(), fresh = TestPort.free()
        let holder = try RawListener()
        func config(_ binds: [Int], target: String = "ops") -> String {
            """
            [listeners.public]
            bind = [\(binds.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]
            default = "\(target)"
            [upstreams.ops]
            servers = ["127.0.0.1:\(ops.plainPort)"]
            [upstreams.other]
            servers = ["\(TestPort.refusingAddress)"]
            """
        }
        let tailgate = try TailgateInstance.start(config: config([port]), in: sandbox)
        #expect(try tailgate.reload(config([port, fresh, holder.port], target: "other")) == false)
        #expect(tailgate.process.output.contains("cannot bind 127.0.0.1:\(holder.port)"))
        // The error points at the bind entry that failed, as a validation error would.
        let error = tailgate.process.output.split(separator: "\n").first { $0.contains("cannot bind") }.map(String.init) ?? ""
        #expect(error.contains(".toml:2:") && error.contains("listeners.public.bind[2]: listener 'public': cannot bind"), "\(error)")
        // Rolled back: the other new bind is closed again and the old policy still routes to ops.
        #expect((try? RawClient(host: "127.0.0.1", port: fresh)) == nil)
        #expect(curl(sandbox, host: "ops.example.com", port: port).output == "ops  ops.example.com\n")
        #expect(try tailgate.reload(config([port, fresh])))
        #expect(curl(sandbox, host: "ops.example.com", port: fresh).output == "ops  ops.example.com\n")
    }

    /// Widening a bind to the wildcard of its port, or narrowing it back, is a reload like any other: the old
    /// socket holds the port until the commit closes it, so both listen for that moment (SO_REUSEPORT, taken
    /// off again after), and the connections it accepted go on.
    @Test(arguments: RelayMode.allCases)
    func aBindMovesBetweenAnAddressAndTheWildcardOfItsPort(relay: RelayMode) throws {
        let sandbox = try Sandbox("reload-widen")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["ops.example.com"])
        let ops = try NginxUpstream.start("ops", in: sandbox)
        let port = TestPort.free()
        func config(_ host: String) -> String {
            """
            [listeners.public]
            bind = ["\(host):\(port)"]
            default = "ops"
            [upstreams.ops]
            servers = ["127.0.0.1:\(ops.plainPort)"]
            """
        }
        let tailgate = try TailgateInstance.start(relay: relay, config: config("127.0.0.1"), in: sandbox)
        let held = try RawClient(host: "127.0.0.1", port: port)
        held.send(try Captures.load("curl.bin"))
        #expect(!held.receive(timeout: 5).isEmpty, "nginx answers the ClientHello")
        for host in ["0.0.0.0", "127.0.0.1"] {
            #expect(try tailgate.reload(config(host)), "\(tailgate.process.output.suffix(600))")
            #expect(curl(sandbox, host: "ops.example.com", port: port).output == "ops  ops.example.com\n")
        }
        #expect(!held.isClosedByPeer, "a connection accepted before both reloads was cut")
    }

    /// A bind removed by one reload and configured again by the next, within drain_timeout, keeps the
    /// connections it had: they are no longer cut when the removed socket's drain_timeout ends.
    @Test func aBindConfiguredAgainKeepsItsConnectionsPastDrainTimeout() throws {
        let sandbox = try Sandbox("reload-restore")
        defer { sandbox.tearDown() }
        let upstream = try RawServer(.drain)
        let port = TestPort.free(), other = TestPort.free()
        func config(_ bind: Int) -> String {
            """
            [global]
            drain_timeout = "1s"
            [listeners.public]
            bind = ["127.0.0.1:\(bind)"]
            default = "app"
            [upstreams.app]
            servers = ["127.0.0.1:\(upstream.port)"]
            """
        }
        let tailgate = try TailgateInstance.start(config: config(port), in: sandbox)
        let held = try RawClient(host: "127.0.0.1", port: port)
        held.send(try Captures.load("curl.bin"))
        #expect(Poll.until(timeout: 5) { upstream.received.count > 0 })
        #expect(try tailgate.reload(config(other)))
        #expect(try tailgate.reload(config(port)))
        #expect(tailgate.process.output.contains("bind configured again; its connections from before are no longer bound by drain_timeout"))
        Thread.sleep(forTimeInterval: 2)
        #expect(!held.isClosedByPeer, "\(tailgate.process.output.suffix(800))")
        #expect(!tailgate.process.output.contains("drain_timeout reached"))
        held.send("still here")
        #expect(Poll.until(timeout: 5) { String(decoding: upstream.received, as: UTF8.self).hasSuffix("still here") })
        // Said once, not on every reload; removed once more, its connections drain again.
        #expect(try tailgate.reload(config(port)))
        #expect(tailgate.process.output.components(separatedBy: "bind configured again").count == 2)
        #expect(try tailgate.reload(config(other)))
        #expect(tailgate.process.output.contains("bind removed again; its connections from before may finish within drain_timeout bind=127.0.0.1:\(port) connections=1"))
        #expect(held.waitForClose(timeout: 5), "drain_timeout (1s) no longer applied to the connection")
    }

    /// Under `enabled = false` the ports tailgate would restrict are said at start and when they change, not
    /// again on every reload.
    @Test func aDisabledFirewallIsAnnouncedOnceAndWhenItsPortsChange() throws {
        let sandbox = try Sandbox("reload-fw-off")
        defer { sandbox.tearDown() }
        let port = TestPort.free()
        func config(_ ports: String) -> String {
            """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "nowhere"
            [upstreams.nowhere]
            servers = ["\(TestPort.refusingAddress)"]
            [firewall]
            enabled = false
            tcp_ports = [\(ports)]
            """
        }
        let tailgate = try TailgateInstance.start(config: config("5432"), in: sandbox)
        #expect(try tailgate.reload(config("5432")))
        #expect(try tailgate.reload(config("5432")))
        #expect(try tailgate.reload(config("5432, 6379")))
        let lines = tailgate.process.output.split(separator: "\n").filter { $0.contains("firewall disabled (enabled = false)") }
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.last?.contains("tcp_ports=5432,6379") == true)
    }

    @Test func aRemovedServerIsReportedUntilItsLastConnectionEnds() throws {
        let sandbox = try Sandbox("reload-bluegreen")
        defer { sandbox.tearDown() }
        let blue = try RawServer(.drain)
        let green = try RawServer(.drain)
        let port = TestPort.free()
        func config(_ server: Int) -> String {
            """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            [upstreams.app]
            servers = ["127.0.0.1:\(server)"]
            """
        }
        let tailgate = try TailgateInstance.start(config: config(blue.port), in: sandbox)
        let client = try RawClient(host: "127.0.0.1", port: port)
        client.send(try Captures.load("curl.bin"))
        #expect(Poll.until(timeout: 5) { blue.received.count > 0 })
        #expect(try tailgate.reload(config(green.port)))
        #expect(tailgate.process.output.contains("server left the configuration connections=1 server=127.0.0.1:\(blue.port)"))
        // The old connection still goes to blue; new ones go to green.
        client.send("still blue")
        #expect(Poll.until(timeout: 5) { String(decoding: blue.received, as: UTF8.self).hasSuffix("still blue") })
        let newcomer = try RawClient(host: "127.0.0.1", port: port)
        newcomer.send(try Captures.load("curl.bin"))
        #expect(Poll.until(timeout: 5) { green.received.count > 0 })
        client.close()
        #expect(tailgate.process.waitForOutput("removed server has no connections left server=127.0.0.1:\(blue.port)"))

        // A server that leaves with no connections is said to have none left at once (what a script waits for).
        newcomer.close()
        #expect(tailgate.waitForConnectionLine(containing: ["server=127.0.0.1:\(green.port)"]) != nil)
        #expect(try tailgate.reload(config(blue.port)))
        #expect(tailgate.process.output.contains("server left the configuration connections=0 server=127.0.0.1:\(green.port)"))
        #expect(tailgate.process.output.contains("removed server has no connections left server=127.0.0.1:\(green.port)"))

        // A rollback: red leaves with a connection and comes back before it ends; it is no longer waited on.
        let red = try RawServer(.drain)
        #expect(try tailgate.reload(config(red.port)))
        let held = try RawClient(host: "127.0.0.1", port: port)
        held.send(try Captures.load("curl.bin"))
        #expect(Poll.until(timeout: 5) { red.received.count > 0 })
        #expect(try tailgate.reload(config(green.port)))
        #expect(tailgate.process.output.contains("server left the configuration connections=1 server=127.0.0.1:\(red.port)"))
        #expect(try tailgate.reload(config(red.port)))
        held.close()
        #expect(tailgate.waitForConnectionLine(containing: ["server=127.0.0.1:\(red.port)"]) != nil)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(!tailgate.process.output.contains("no connections left server=127.0.0.1:\(red.port)"),
                "red is configured again, yet was reported drained")
    }
}
