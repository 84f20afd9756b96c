import Foundation
import TailgateTestSupport
import Testing

/// The health endpoint, the metrics and the active upstream checks, against real nginx upstreams.
@Suite(.serialized)
struct HealthIntegrationTests {
    static func http(_ port: Int, _ path: String, method: String = "GET") -> (code: String, body: String) {
        var arguments = ["-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]
        if method == "HEAD" { arguments.insert("-I", at: 0) } else if method != "GET" { arguments.insert(contentsOf: ["-X", method], at: 0) }
        let output = Command.run("/usr/bin/curl", arguments).output
        let code = output.split(separator: "\n", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        return (code, String(output.dropLast(code.count + 1)))
    }

    /// Parses /metrics with the reference Python parser and returns `name{labels} value` lines.
    /// A listener routing app.example.com to `app`, whose server a TLS check watches, and the health endpoint.
    static func checkedConfig(port: Int, health: Int, app: NginxUpstream, in sandbox: Sandbox, interval: String = "300ms") -> String {
        """
        [health]
        listen = "127.0.0.1:\(health)"
        [listeners.public]
        bind = ["127.0.0.1:\(port)"]
        [listeners.public.routes]
        "app.example.com" = "app"
        [upstreams.app]
        servers = ["127.0.0.1:\(app.proxyPort)"]
        send_proxy = "v2"
        check = "tls"
        check_interval = "\(interval)"
        check_ca = "\(sandbox.path("ca.crt"))"
        """
    }

    static func parsedMetrics(_ port: Int) -> (ok: Bool, samples: [String: Double], output: String) {
        let script = """
            import sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            text = urllib.request.urlopen("http://127.0.0.1:\(port)/metrics", timeout=10).read().decode()
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    print(f"{s.name}{{{labels}}} {s.value}")
            """
        let result = Command.run("/usr/bin/python3", ["-c", script], timeout: 30)
        var samples: [String: Double] = [:]
        for line in result.output.split(separator: "\n") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return (result.status == 0, samples, result.output)
    }

    /// An `https` check asks nginx for a path through the PROXY preamble and TLS: up on 200, down on 404
    /// with the status as the reason, and up again when a reload points it back.
    @Test func anHTTPSCheckMarksAServerDownOnAnErrorStatus() throws {
        let sandbox = try Sandbox("https-check")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free(), healthPort = TestPort.free()
        func config(_ path: String) -> String {
            Self.checkedConfig(port: port, health: healthPort, app: app, in: sandbox, interval: "200ms")
                .replacingOccurrences(of: "check = \"tls\"", with: "check = \"https\"\ncheck_path = \"\(path)\"\nrise = 1\nfall = 1")
        }
        let tailgate = try TailgateInstance.start(config: config("/"), in: sandbox)
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/status").body.contains("\"state\":\"up\"") })
        #expect(Self.http(healthPort, "/status").body.contains("\"check\":\"https\""))
        #expect(try tailgate.reload(config("/files/not-there")))
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/status").body.contains("\"result\":\"HTTP status 404\"") },
                "\(Self.http(healthPort, "/status").body)")
        #expect(Self.http(healthPort, "/status").body.contains("\"state\":\"down\""))
        #expect(try tailgate.reload(config("/")))
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/status").body.contains("\"state\":\"up\"") })
    }

    @Test func endpointsAnswerAndMetricsParseAndMoveWithTraffic() throws {
        let sandbox = try Sandbox("health")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try TailgateInstance.start(config: Self.checkedConfig(port: port, health: healthPort, app: app, in: sandbox), in: sandbox)
        #expect(TestPort.waitUntilAccepting(healthPort))
        #expect(Self.http(healthPort, "/healthz") == ("200", "ok\n"))
        #expect(Self.http(healthPort, "/healthz", method: "HEAD").code == "200")
        #expect(Self.http(healthPort, "/nope").code == "404")
        #expect(Self.http(healthPort, "/healthz", method: "POST").code == "405")
        #expect(Self.http(healthPort, "/readyz") == ("200", "{\"ready\":true}\n"))

        for _ in 0..<3 { #expect(curl(sandbox, host: "app.example.com", port: port).output == "app 127.0.0.1 app.example.com\n") }
        let garbage = try RawClient(host: "127.0.0.1", port: port)
        garbage.send("hello?")
        #expect(garbage.waitForClose(timeout: 5))

        // The TLS check (with a PROXY v2 LOCAL preamble, since the upstream expects PROXY protocol) marks it up.
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/status").body.contains("\"state\":\"up\"") })
        let status = Self.http(healthPort, "/status")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [String: Any])
        #expect((json["config"] as? [String: Any])?["generation"] as? Int == 1)
        #expect(((json["config"] as? [String: Any])?["hash"] as? String)?.count == 64)
        let listeners = try #require(json["listeners"] as? [[String: Any]])
        #expect(listeners.first?["name"] as? String == "public")
        #expect(listeners.first?["accepted_connections"] as? Int == 4)
        let upstreams = try #require(json["upstreams"] as? [[String: Any]])
        let server = try #require((upstreams.first?["servers"] as? [[String: Any]])?.first)
        #expect(server["state"] as? String == "up")
        #expect((server["certificate_not_after"] as? Int ?? 0) > Int(Date().timeIntervalSince1970))
        #expect(((server["last_check"] as? [String: Any])?["result"] as? String) == "ok")

        let metrics = Self.parsedMetrics(healthPort)
        #expect(metrics.ok, "prometheus_client could not parse /metrics: \(metrics.output)")
        let s = metrics.samples
        #expect(s["tailgate_connections_accepted_total{listener=\"public\"}"] == 4)
        #expect(s["tailgate_connections_ended_total{listener=\"public\",outcome=\"closed\",route=\"app.example.com\"}"] == 3)
        #expect(s["tailgate_client_hello_failures_total{listener=\"public\",reason=\"not_tls\"}"] == 1)
        #expect((s["tailgate_relayed_bytes_total{direction=\"out\",listener=\"public\",upstream=\"app\"}"] ?? 0) > 1_000)
        // The refused client's "hello?" was not relayed anywhere.
        #expect(s["tailgate_relayed_bytes_total{direction=\"in\",listener=\"public\",upstream=\"none\"}"] == nil)
        #expect(s["tailgate_upstream_server_up{server=\"127.0.0.1:\(app.proxyPort)\",upstream=\"app\"}"] == 1)
        #expect((s["tailgate_upstream_certificate_expiry_timestamp_seconds{server=\"127.0.0.1:\(app.proxyPort)\",upstream=\"app\"}"] ?? 0) > Date().timeIntervalSince1970)
        #expect(s["tailgate_upstream_connect_duration_seconds_count{upstream=\"app\"}"] == 3)
        #expect(s["tailgate_config_generation{}"] == 1)
        #expect(s["tailgate_ready{}"] == 1)

        // Every metric the shipped dashboard and alert rules use exists (firewall ones: FirewallIntegrationTests).
        let exposed = DashboardMetrics.exposed(Self.http(healthPort, "/metrics").body)
        let missing = try DashboardMetrics.referenced().filter { !$0.hasPrefix("tailgate_firewall_") && !exposed.contains($0) }
        #expect(missing.isEmpty, "the dashboard or alerts use metrics /metrics does not have: \(missing.sorted())")

        let text = Command.run(Sandbox.tailgateBinary, ["status", "--health", "http://127.0.0.1:\(healthPort)"])
        #expect(text.status == 0)
        #expect(text.output.contains("public"))
        #expect(text.output.contains("127.0.0.1:\(app.proxyPort)"))
        #expect(text.output.contains(" up "))
        // The garbage connection above: counted per outcome and listed with its reason, as the log has it.
        #expect(text.output.contains("not served since start:\n  public         bad_client_hello 1"), "\(text.output)")
        #expect(text.output.contains("recent connection errors:") && text.output.contains(" bad_client_hello (not_tls)\n"), "\(text.output)")
        let jsonStatus = Command.run(Sandbox.tailgateBinary, ["status", "--json", "--health", "http://127.0.0.1:\(healthPort)"])
        let parsed = (try? JSONSerialization.jsonObject(with: Data(jsonStatus.output.utf8))) as? [String: Any]
        #expect(jsonStatus.status == 0 && (parsed?["config"] as? [String: Any])?["generation"] as? Int == 1 && jsonStatus.output.contains("127.0.0.1:\(app.proxyPort)"), "\(jsonStatus.output)")
        // The address alone, or the configuration's [health] listen, reach the same endpoint (the first line,
        // with the uptime, may differ by a second).
        func table(_ arguments: [String]) -> [Substring] { Command.run(Sandbox.tailgateBinary, ["status"] + arguments).output.split(separator: "\n").dropFirst().map { $0 } }
        let expected = text.output.split(separator: "\n").dropFirst().map { $0 }
        #expect(table(["--health", "127.0.0.1:\(healthPort)"]) == expected)
        #expect(table(["--config", tailgate.configPath]) == expected)
        // A file being edited, with an error elsewhere, still says where the endpoint is.
        try sandbox.write("editing.toml", try String(contentsOfFile: tailgate.configPath, encoding: .utf8) + "\nbogus = 1\n")
        #expect(table(["--config", sandbox.path("editing.toml")]) == expected)
        try sandbox.write("nohealth.toml", "[listeners.a]\nbind = [\"127.0.0.1:1\"]\nbogus = 1\n")
        let refused = Command.run(Sandbox.tailgateBinary, ["status", "--config", sandbox.path("nohealth.toml")])
        #expect(refused.status == 1)
        #expect(refused.output.contains("unknown key 'bogus'"), "\(refused.output)")
    }

    /// Gauges of what a reload removed (a listener, a server, an upstream's check state) leave /metrics once
    /// nothing uses them; left behind they would report their last value for ever, and a removed upstream's
    /// down server would keep an alert firing.
    @Test func gaugesOfWhatAReloadRemovedLeaveTheMetrics() throws {
        let sandbox = try Sandbox("stale-gauges")
        defer { sandbox.tearDown() }
        let blue = try RawServer(.drain)
        let green = try RawServer(.drain)
        let port = TestPort.free(), side = TestPort.free(), healthPort = TestPort.free()
        // The checked upstream is named after the server too, so that it is removed with it.
        func config(_ server: Int, withSide: Bool) -> String {
            """
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app\(server)"
            [listeners.public.routes]
            "checked.test" = "checked\(server)"
            """ + (withSide ? "\n[listeners.side]\nbind = [\"127.0.0.1:\(side)\"]\ndefault = \"app\(server)\"\n" : "\n") + """
            [upstreams.app\(server)]
            servers = ["127.0.0.1:\(server)"]
            [upstreams.checked\(server)]
            servers = ["\(TestPort.refusingAddress)"]
            check = "tcp"
            check_interval = "200ms"
            """
        }
        let tailgate = try TailgateInstance.start(config: config(blue.port, withSide: true), in: sandbox)
        let held = try RawClient(host: "127.0.0.1", port: side)
        held.send(try Captures.load("curl.bin"))
        #expect(Poll.until(timeout: 5) { blue.received.count > 0 })
        let before = Self.parsedMetrics(healthPort).samples
        #expect(before["tailgate_connections_active{listener=\"side\"}"] == 1)
        #expect(before["tailgate_upstream_server_connections_active{server=\"127.0.0.1:\(blue.port)\"}"] == 1)
        #expect(Poll.until(timeout: 5) {
            Self.parsedMetrics(healthPort).samples["tailgate_upstream_server_up{server=\"\(TestPort.refusingAddress)\",upstream=\"checked\(blue.port)\"}"] == 0
        })

        #expect(try tailgate.reload(config(green.port, withSide: false)))
        // While its connection lasts, the removed listener's gauge stays, as the departed server's does.
        #expect(Self.parsedMetrics(healthPort).samples["tailgate_connections_active{listener=\"side\"}"] == 1)
        // The status page shows the server draining (blue/green), in the blue it uses for them.
        let draining = Self.http(healthPort, "/").body
        #expect(draining.contains("<h3 class=\"draining\">Draining") && draining.contains("<code>127.0.0.1:\(blue.port)</code>: <span class=\"draining\""), "\(draining)")
        held.close()
        #expect(tailgate.process.waitForOutput("removed server has no connections left server=127.0.0.1:\(blue.port)"))
        let after = Self.parsedMetrics(healthPort)
        let stale = after.samples.keys.filter {
            $0.contains("listener=\"side\"") && $0.hasPrefix("tailgate_connections_active")
                || $0.hasPrefix("tailgate_upstream_server_connections_active{server=\"127.0.0.1:\(blue.port)\"")
                || $0.hasPrefix("tailgate_upstream_server_up{") && $0.contains("upstream=\"checked\(blue.port)\"")
        }
        #expect(stale.isEmpty, "\(stale.sorted())")
        // What is still configured is still there.
        #expect(after.samples["tailgate_connections_active{listener=\"public\"}"] == 0)
        #expect(after.samples["tailgate_upstream_server_connections_active{server=\"127.0.0.1:\(green.port)\"}"] == 0)
        // Counters keep their history.
        #expect(after.samples["tailgate_connections_accepted_total{listener=\"side\"}"] == 1)
    }

    @Test func aStoppedServerIsMarkedDownAfterFallAndTrafficGoesToTheOther() throws {
        let sandbox = try Sandbox("checks")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let blue = try NginxUpstream.start("blue", in: sandbox)
        let green = try NginxUpstream.start("green", in: sandbox)
        let port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [health]
            listen = ["127.0.0.1:\(healthPort)"]
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            [upstreams.app]
            servers = ["127.0.0.1:\(blue.plainPort)", "127.0.0.1:\(green.plainPort)"]
            check = "tls"
            check_sni = "app.example.com"
            check_ca = "\(sandbox.path("ca.crt"))"
            check_interval = "200ms"
            rise = 2
            fall = 3
            """, in: sandbox)
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/status").body.components(separatedBy: "\"state\":\"up\"").count == 3 })
        blue.process.stop()
        #expect(tailgate.process.waitForOutput("upstream server is down"))
        let downLine = tailgate.process.output.split(separator: "\n").first { $0.contains("upstream server is down") } ?? ""
        #expect(downLine.contains("server=127.0.0.1:\(blue.plainPort)"))
        #expect(downLine.contains("result=\"connection refused\""))
        // Traffic goes to green only, without a failed connect to blue first.
        for _ in 0..<6 {
            #expect(curl(sandbox, host: "app.example.com", port: port).output == "green  app.example.com\n")
        }
        // Logged once, not on every check.
        usleep(1_000_000)
        #expect(tailgate.process.output.components(separatedBy: "upstream server is down").count == 2)
        // Blue comes back on the same port: up again after `rise` successes.
        let revived = try sandbox.start("nginx-blue-again", Command.executable(named: "nginx") ?? "/usr/sbin/nginx",
                                        ["-p", sandbox.directory, "-c", sandbox.path("nginx-blue.conf")])
        #expect(TestPort.waitUntilAccepting(blue.plainPort))
        #expect(tailgate.process.waitForOutput("upstream server is up server=127.0.0.1:\(blue.plainPort)") || Poll.until(timeout: 10) {
            tailgate.process.output.components(separatedBy: "server=127.0.0.1:\(blue.plainPort)").count > 2
        })
        _ = revived
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/status").body.components(separatedBy: "\"state\":\"up\"").count == 3 })
    }

    @Test func readyzFailsWhileANewListenerCannotBeBoundAndRecovers() throws {
        let sandbox = try Sandbox("readyz")
        defer { sandbox.tearDown() }
        let port = TestPort.free(), healthPort = TestPort.free()
        var holder: RawListener? = try RawListener()
        let busy = holder?.port ?? 0
        func config(_ binds: [Int]) -> String {
            """
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.public]
            bind = [\(binds.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]
            default = "u"
            [upstreams.u]
            servers = ["\(TestPort.refusingAddress)"]
            """
        }
        let tailgate = try TailgateInstance.start(config: config([port]), in: sandbox)
        #expect(TestPort.waitUntilAccepting(healthPort))
        #expect(Self.http(healthPort, "/readyz").code == "200")
        #expect(try tailgate.reload(config([port, busy])) == false)
        let notReady = Self.http(healthPort, "/readyz")
        #expect(notReady.code == "503")
        #expect(notReady.body.contains("a listener cannot be bound"))
        #expect(notReady.body.contains("127.0.0.1:\(busy)"))
        let status = Self.http(healthPort, "/status").body
        #expect(status.contains("\"ok\":false"))
        // The page says so first: not ready and why, and the failed reload.
        var page = Self.http(healthPort, "/").body
        #expect(page.contains("<p class=\"banner bad\" id=\"readiness\">Not ready: a listener cannot be bound"), "\(page)")
        #expect(page.contains("failed; generation 1 still serves"))
        // A reload refused for the file's errors lists them with file:line:col.
        #expect(try tailgate.reload(config([port]) + "\nbogus = 1\n") == false)
        page = Self.http(healthPort, "/").body
        #expect(page.contains("failed; generation 1 still serves") && page.contains("tailgate.toml:8:1"), "\(page)")
        holder = nil
        #expect(try tailgate.reload(config([port, busy])))
        #expect(Self.http(healthPort, "/readyz").code == "200")
        #expect(Self.parsedMetrics(healthPort).samples["tailgate_reload_failures_total{}"] == 2)
    }

    @Test func badCertificatesAreReportedAsSuch() throws {
        let sandbox = try Sandbox("certs")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        try sandbox.certificates.issue("expired", dnsNames: ["app.example.com"], validity: .between("20200101000000Z", "20200102000000Z"))
        try sandbox.certificates.makeSelfSigned("selfsigned", dnsNames: ["app.example.com"])
        try sandbox.certificates.issue("other", dnsNames: ["other.example.com"])
        let expired = try NginxUpstream.start("expired", in: sandbox, certificate: "expired")
        let selfSigned = try NginxUpstream.start("selfsigned", in: sandbox, certificate: "selfsigned")
        let other = try NginxUpstream.start("other", in: sandbox, certificate: "other")
        let good = try NginxUpstream.start("good", in: sandbox)
        let port = TestPort.free(), healthPort = TestPort.free()
        _ = try TailgateInstance.start(config: """
            [health]
            listen = "127.0.0.1:\(healthPort)"
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            [listeners.public.routes]
            "app.example.com" = "app"
            [upstreams.app]
            servers = ["127.0.0.1:\(expired.plainPort)", "127.0.0.1:\(selfSigned.plainPort)", "127.0.0.1:\(other.plainPort)", "127.0.0.1:\(good.plainPort)"]
            check = "tls"
            check_ca = "\(sandbox.path("ca.crt"))"
            check_interval = "200ms"
            fall = 1
            rise = 1
            """, in: sandbox)
        #expect(TestPort.waitUntilAccepting(healthPort))
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/status").body.components(separatedBy: "\"last_check\"").count == 5 })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(Self.http(healthPort, "/status").body.utf8)) as? [String: Any])
        let servers = try #require(((json["upstreams"] as? [[String: Any]])?.first?["servers"]) as? [[String: Any]])
        func result(_ upstream: NginxUpstream) -> (state: String?, result: String?, notAfter: Int?) {
            let server = servers.first { $0["address"] as? String == "127.0.0.1:\(upstream.plainPort)" }
            return (server?["state"] as? String, (server?["last_check"] as? [String: Any])?["result"] as? String, server?["certificate_not_after"] as? Int)
        }
        #expect(result(expired).state == "down")
        #expect(result(expired).result == "certificate expired")
        #expect((result(expired).notAfter ?? .max) < Int(Date().timeIntervalSince1970))
        #expect(result(selfSigned).state == "down")
        #expect(result(selfSigned).result?.hasPrefix("certificate not trusted") == true)
        #expect(result(other).state == "down")
        #expect(result(other).result == "certificate is for another name")
        #expect(result(good).state == "up")
        #expect(result(good).result == "ok")
        // Balancing skips the three down servers.
        for _ in 0..<4 {
            #expect(curl(sandbox, host: "app.example.com", port: port).output == "good  app.example.com\n")
        }
    }

    @Test func whenEveryServerIsDownConnectionsAreStillTriedAndTheLogSaysSo() throws {
        let sandbox = try Sandbox("all-down")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let only = try NginxUpstream.start("only", in: sandbox)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            [upstreams.app]
            servers = ["127.0.0.1:\(only.plainPort)"]
            check = "tcp"
            check_interval = "200ms"
            fall = 1
            rise = 100
            """, in: sandbox)
        only.process.stop()
        #expect(tailgate.process.waitForOutput("upstream server is down"))
        // The server is back, but its checks need 100 successes (20 s) to mark it up: it is still tried.
        _ = try sandbox.start("nginx-only-again", Command.executable(named: "nginx") ?? "/usr/sbin/nginx", ["-p", sandbox.directory, "-c", sandbox.path("nginx-only.conf")])
        #expect(TestPort.waitUntilAccepting(only.plainPort))
        #expect(curl(sandbox, host: "app.example.com", port: port).output == "only  app.example.com\n")
        #expect(tailgate.process.output.contains("every server of the upstream is marked down by its checks or skipped after a failed connect (fail_timeout); trying them anyway upstream=app"))
    }

    /// The checker sleeps for good while no upstream has checks; a reload that adds some wakes it at once.
    @Test func checksAddedByAReloadStartAtOnce() throws {
        let sandbox = try Sandbox("checks-added")
        defer { sandbox.tearDown() }
        let port = TestPort.free()
        let closed = TestPort.free()
        func config(checked: Bool) -> String {
            """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            [upstreams.app]
            servers = ["127.0.0.1:\(closed)"]
            \(checked ? "check = \"tcp\"\ncheck_interval = \"200ms\"\nfall = 1" : "")
            """
        }
        let tailgate = try TailgateInstance.start(config: config(checked: false), in: sandbox)
        usleep(500_000)
        #expect(!tailgate.process.output.contains("upstream server is down"))
        #expect(try tailgate.reload(config(checked: true)))
        #expect(tailgate.process.waitForOutput("upstream server is down", timeout: 3))
        #expect(tailgate.process.output.contains("server=127.0.0.1:\(closed)"))
    }

    /// The endpoint's connections draw on the proxy's descriptors: a malformed request is answered 400 and
    /// closed, a connection that has not sent a whole request head within a second is answered 408 and
    /// closed, and a flood of idle connections from one source leaves it holding no more than its caps.
    @Test func theEndpointClosesBadAndSlowConnectionsAndHoldsNoMoreThanItsLimit() throws {
        let sandbox = try Sandbox("health-hostile")
        defer { sandbox.tearDown() }
        let (tailgate, _, healthPort) = try TailgateInstance.startWithHealth(in: sandbox)
        let pid = tailgate.process.pid

        let malformed = try RawClient(host: "127.0.0.1", port: healthPort)
        malformed.send("GET /healthz\r\n\r\n")
        let answer = String(decoding: malformed.receive(atLeast: 12, timeout: 5), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
        #expect(malformed.waitForClose(timeout: 5))

        // Timed from before the connect, so never short of the endpoint's timer.
        let start = Date()
        let slow = try RawClient(host: "127.0.0.1", port: healthPort)
        slow.send("GET /heal")
        let late = String(decoding: slow.receive(atLeast: 12, timeout: 10), as: UTF8.self)
        #expect(late.hasPrefix("HTTP/1.1 408"), "\(late)")
        #expect(slow.waitForClose(timeout: 10))
        let held = Date().timeIntervalSince(start)
        #expect(held > 0.9 && held < 8, "closed after \(held) s")

        // 300 idle connections from one source: 32 are held, the rest evict the oldest (set aside unread
        // until their head deadline); the table and the set-aside are 256 each at most.
        let baseline = openDescriptors(pid).sockets
        var idle: [RawClient] = []
        for _ in 0..<300 { idle.append(try RawClient(host: "127.0.0.1", port: healthPort)) }
        let sockets = openDescriptors(pid).sockets
        #expect(sockets <= baseline + 512, "sockets: \(sockets), before: \(baseline)")
        #expect(tailgate.process.waitForOutput("health endpoint full", timeout: 5))
        // None sent a head: every one is closed by its deadline.
        #expect(Poll.until(timeout: 15) { idle.allSatisfy(\.isClosedByPeer) }, "\(idle.filter(\.isClosedByPeer).count) of 300 closed")
        for client in idle { client.close() }
        #expect(Poll.until(timeout: 10) { Self.http(healthPort, "/healthz") == ("200", "ok\n") })
    }
}
