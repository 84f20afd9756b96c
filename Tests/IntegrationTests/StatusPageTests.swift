import Foundation
import Testing
import TailgateTestSupport

/// The status page in a real browser (headless Chromium), and the health endpoint under a peer that tries
/// to hold it.
@Suite(.serialized) struct StatusPageTests {
    /// Where the screenshots go (CI keeps .build/test-artifacts).
    static let artifacts = "\(Sandbox.repositoryRoot)/.build/test-artifacts"

    static func chromium() throws -> String {
        guard let chromium = Command.executable(named: "chromium") else { throw SandboxError.missingTool("chromium") }
        return chromium
    }

    /// Headless Chromium on `url` with `arguments` (`--dump-dom`, `--screenshot=…`); its own profile in the sandbox.
    static func browse(_ url: String, _ arguments: [String], in sandbox: Sandbox) throws -> CommandResult {
        try Command.run(chromium(), ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                                     "--user-data-dir=\(sandbox.path("chromium"))"] + arguments + [url], errorsApart: true, timeout: 90)
    }

    /// A listener routing app.example.com to nginx, whose TLS-checked certificate expires in 10 days, and an
    /// upstream whose only server refuses (down).
    static func startWatched(in sandbox: Sandbox) throws -> (tailgate: TailgateInstance, port: Int, healthPort: Int) {
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"], validity: .days(10))
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free(), healthPort = TestPort.free()
        let config = HealthIntegrationTests.checkedConfig(port: port, health: healthPort, app: app, in: sandbox) + """

            [listeners.public.routes."spare.example.com"]
            upstream = "spare"
            [upstreams.spare]
            servers = ["\(TestPort.refusingAddress)"]
            check = "tcp"
            check_interval = "200ms"
            fall = 1
            """
        let tailgate = try TailgateInstance.start(config: config, in: sandbox)
        #expect(TestPort.waitUntilAccepting(healthPort))
        let settled = Poll.until(timeout: 15) {
            let status = HealthIntegrationTests.http(healthPort, "/status").body
            return status.contains("\"state\":\"up\"") && status.contains("\"state\":\"down\"")
        }
        #expect(settled, "\(HealthIntegrationTests.http(healthPort, "/status").body)")
        return (tailgate, port, healthPort)
    }

    static func certificateDays(_ healthPort: Int) throws -> Int {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(HealthIntegrationTests.http(healthPort, "/status").body.utf8)) as? [String: Any])
        let upstreams = try #require(json["upstreams"] as? [[String: Any]])
        let app = try #require(upstreams.first { $0["name"] as? String == "app" }?["servers"] as? [[String: Any]])
        return try #require(app.first?["certificate_days"] as? Int)
    }

    @Test func aBrowserSeesListenersUpstreamsADownServerAndCertificateDaysWithAndWithoutJavaScript() throws {
        let sandbox = try Sandbox("status-page")
        defer { sandbox.tearDown() }
        let (_, port, healthPort) = try Self.startWatched(in: sandbox)
        #expect(curl(sandbox, host: "app.example.com", port: port).output.hasPrefix("app "))
        let days = try Self.certificateDays(healthPort)
        #expect(days == 9 || days == 10)

        // The page as sent: self-contained and small, with a policy that lets nothing else in.
        let head = Command.run("/usr/bin/curl", ["-s", "-D", "-", "-o", sandbox.path("page.html"), "http://127.0.0.1:\(healthPort)/"]).output
        #expect(head.contains("Content-Type: text/html"))
        #expect(head.contains("Content-Security-Policy: default-src 'none'"))
        let page = try String(contentsOfFile: sandbox.path("page.html"), encoding: .utf8)
        #expect(page.utf8.count < 50 * 1024, "\(page.utf8.count) bytes")
        for external in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
            #expect(!page.contains(external), "the page loads \(external)…")
        }
        #expect(!page.contains("<form") && !page.contains("method=\"post\""))
        // A browser asking for /status gets the page; a tool gets JSON.
        let browserStatus = Command.run("/usr/bin/curl", ["-s", "-H", "Accept: text/html,application/xhtml+xml", "http://127.0.0.1:\(healthPort)/status"]).output
        #expect(browserStatus.hasPrefix("<!doctype html>"))
        #expect(HealthIntegrationTests.http(healthPort, "/status").body.hasPrefix("{"))

        // Chromium's own --dump-dom: the DOM after the page's script has run.
        let dumped = try Self.browse("http://127.0.0.1:\(healthPort)/", ["--dump-dom", "--virtual-time-budget=1000"], in: sandbox)
        #expect(dumped.output.contains("<b>public</b>") && dumped.output.contains("class=\"st down\">down<")
            && dumped.output.contains(" days</span>") && dumped.output.contains("<b>app</b>"), "\(dumped.output.prefix(600)) \(dumped.errors.suffix(300))")

        let script = "\(Sandbox.repositoryRoot)/Tests/Fixtures/live_page.py"
        for (label, flags) in [("with JavaScript", []), ("without JavaScript", ["--no-javascript"])] {
            let run = Command.run("/usr/bin/python3", [script, try Self.chromium(), "http://127.0.0.1:\(healthPort)/", "--text"] + flags, timeout: 90)
            #expect(run.status == 0, "\(label): \(run.output.suffix(500))")
            let parts = run.output.components(separatedBy: "\n----\n")
            let visible = parts[0].lowercased(), html = parts.count > 1 ? parts[1] : ""
            #expect(visible.contains("public") && visible.contains("127.0.0.1:\(port)"), "\(label): \(visible)")
            #expect(visible.contains("app") && visible.contains("spare"), "\(label)")
            #expect(visible.contains("\(TestPort.refusingAddress)") && html.contains("class=\"st down\">down<"), "\(label)")
            // (9 or 10 days: the certificate was issued for 10 days from a second that may have passed.)
            #expect(html.contains("class=\"cert bad\">9 days<") || html.contains("class=\"cert bad\">10 days<"), "\(label): a certificate under 14 days is shown red")
            #expect(visible.contains("needs attention") && (visible.contains("expires in 9 days") || visible.contains("expires in 10 days")), "\(label)")
            #expect(visible.contains("every server of upstream spare is down"), "\(label)")
            #expect(visible.contains("ready"), "\(label)")
        }

        // Light and dark by prefers-color-scheme; at 375 px wide nothing scrolls sideways and all is there.
        func view(_ flags: [String]) throws -> (visible: String, layout: [String: Any]) {
            let run = Command.run("/usr/bin/python3", [script, try Self.chromium(), "http://127.0.0.1:\(healthPort)/", "--text"] + flags, timeout: 90)
            let parts = run.output.components(separatedBy: "\n----\n")
            let layout = parts.count > 2 ? (try? JSONSerialization.jsonObject(with: Data(parts[2].utf8))) as? [String: Any] : nil
            return (parts[0].lowercased(), layout ?? [:])
        }
        #expect(try view([]).layout["background"] as? String == "rgb(255, 255, 255)")
        #expect(try view(["--dark"]).layout["background"] as? String == "rgb(21, 24, 27)")
        let phone = try view(["--width", "375"])
        #expect(phone.layout["innerWidth"] as? Int == 375, "\(phone.layout)")
        #expect((phone.layout["scrollWidth"] as? Int ?? .max) <= 375, "the page scrolls sideways at 375 px: \(phone.layout)")
        #expect(phone.visible.contains("needs attention") && phone.visible.contains("spare") && phone.visible.contains("127.0.0.1:\(port)"))

        // Screenshots, wide and phone-sized, kept as artifacts.
        try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)
        for (width, dark) in [(1280, false), (375, false), (1280, true)] {
            let file = "\(Self.artifacts)/status-page-\(width)\(dark ? "-dark" : "").png"
            unlink(file)
            let shot = try Self.browse("http://127.0.0.1:\(healthPort)/", ["--screenshot=\(file)", "--window-size=\(width),\(width > 1000 ? 800 : 1800)"]
                                        + (dark ? ["--force-dark-mode"] : []), in: sandbox)
            let png = try #require(FileManager.default.contents(atPath: file), "\(shot.errors.suffix(500))")
            #expect(png.count > 10_000)
            // The PNG header's width: the page was laid out at that width.
            let pngWidth = png.count > 24 ? png[16..<20].reduce(0) { $0 << 8 | Int($1) } : 0
            #expect(pngWidth == width)
        }
    }

    /// With JavaScript, the page refreshes its numbers from /status?format=json: connections made through
    /// the proxy after the page loaded show up in it, without loading it again.
    @Test func theLivePageCountsConnectionsMadeAfterItLoaded() throws {
        let sandbox = try Sandbox("status-live")
        defer { sandbox.tearDown() }
        let (_, port, healthPort) = try Self.startWatched(in: sandbox)
        let script = "\(Sandbox.repositoryRoot)/Tests/Fixtures/live_page.py"
        let traffic = ["/usr/bin/curl", "-s", "--max-time", "10", "--cacert", sandbox.path("ca.crt"),
                       "--resolve", "app.example.com:\(port):127.0.0.1", "https://app.example.com:\(port)/"]
        let run = Command.run("/usr/bin/python3", [script, try Self.chromium(), "http://127.0.0.1:\(healthPort)/",
                                                   "[data-k=\"listeners/#0/accepted_connections\"]", "20"] + traffic, timeout: 120)
        #expect(run.status == 0, "\(run.output)")
        let result = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        let before = Int(result?["before"] as? String ?? ""), after = Int(result?["after"] as? String ?? "")
        #expect(before != nil && after != nil && after! >= before! + 3, "\(run.output)")
        #expect(result?["reloaded"] as? Bool == false, "numbers are patched in place: \(run.output)")
    }

    /// Requests a browser or a script gets wrong are answered with a status the client reads, not a reset.
    @Test func badRequestsAreAnsweredAndNotReset() throws {
        let sandbox = try Sandbox("status-bad")
        defer { sandbox.tearDown() }
        let (tailgate, _, healthPort) = try TailgateInstance.startWithHealth(in: sandbox)

        func exchange(_ request: String, thenSend more: [String] = []) throws -> (answer: String, ending: RawClient.Ending?) {
            let client = try RawClient(host: "127.0.0.1", port: healthPort)
            client.send(request)
            // A body still coming after the answer is read and dropped while the close lingers.
            for chunk in more {
                usleep(200_000)
                client.send(chunk)
            }
            let answer = String(decoding: client.receive(atLeast: 12, timeout: 10), as: UTF8.self)
            return (answer, client.waitForEnding(timeout: 10))
        }
        let badPath = try exchange("GET nope HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(badPath.answer.hasPrefix("HTTP/1.1 400") && badPath.ending == .finished, "\(badPath)")
        let sneaky = try exchange("GET a?x=b://h/metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(sneaky.answer.hasPrefix("HTTP/1.1 400"), "\(sneaky)")
        let absolute = try exchange("GET http://node.tailnet:9180/healthz HTTP/1.1\r\nHost: node.tailnet\r\n\r\n")
        #expect(absolute.answer.hasPrefix("HTTP/1.1 200") && absolute.answer.hasSuffix("ok\n"), "\(absolute)")
        let unknown = try exchange("GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(unknown.answer.hasPrefix("HTTP/1.1 404") && unknown.ending == .finished, "\(unknown)")
        let huge = try exchange("GET /status HTTP/1.1\r\nHost: x\r\nX-Filler: \(String(repeating: "a", count: 40_000))\r\n\r\n")
        #expect(huge.answer.hasPrefix("HTTP/1.1 431") && huge.ending == .finished, "\(huge)")
        let slowBody = try exchange("POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", thenSend: Array(repeating: String(repeating: "x", count: 100), count: 6))
        #expect(slowBody.answer.hasPrefix("HTTP/1.1 405") && slowBody.answer.contains("Allow: GET, HEAD") && slowBody.ending == .finished, "\(slowBody)")
        let delete = try exchange("DELETE /status HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(delete.answer.hasPrefix("HTTP/1.1 405"), "\(delete)")
        // And it still answers.
        #expect(HealthIntegrationTests.http(healthPort, "/healthz") == ("200", "ok\n"), "\(tailgate.process.output.suffix(500))")
    }

    /// One peer holds 256 idle connections to the endpoint, reopening each one it closes; a monitor polling
    /// /readyz every half second is answered (at least 9 times in 10) and the proxy serves throughout.
    @Test(arguments: ["127.0.0.2", "127.0.0.1"])
    func aMonitorGetsThroughWhileAPeerHoldsTheEndpoint(peer: String) throws {
        let sandbox = try Sandbox("status-flood")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try TailgateInstance.start(config: HealthIntegrationTests.checkedConfig(port: port, health: healthPort, app: app, in: sandbox), in: sandbox)
        #expect(TestPort.waitUntilAccepting(healthPort))

        let holder = try sandbox.start("holder", "/usr/bin/python3", ["\(Sandbox.repositoryRoot)/Tests/Fixtures/hold_idle.py", "127.0.0.1", "\(healthPort)", peer, "256"])
        #expect(holder.waitForOutput("holding 256", timeout: 20))
        var answered = 0, polls = 0, served = 0
        // 20 s with the peer from another address, 5 s more from the monitor's own.
        let rounds = peer == "127.0.0.1" ? 10 : 40
        for round in 0..<rounds {
            polls += 1
            let reply = Command.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "http://127.0.0.1:\(healthPort)/readyz"])
            if reply.output == "200" { answered += 1 }
            if round % 4 == 0, curl(sandbox, host: "app.example.com", port: port).output.hasPrefix("app ") { served += 1 }
            usleep(500_000)
        }
        holder.signal(SIGTERM)
        #expect(holder.waitForOutput("opened", timeout: 10))
        #expect(answered * 10 >= polls * 9, "answered \(answered) of \(polls); \(tailgate.process.output.suffix(600))")
        #expect(served == (rounds + 3) / 4, "the proxy served \(served) of \((rounds + 3) / 4)")
        #expect(tailgate.process.output.contains("health endpoint full"))
        // And /metrics says someone held the endpoint.
        let evicted = HealthIntegrationTests.parsedMetrics(healthPort).samples["tailgate_health_connections_evicted_total{}"] ?? 0
        #expect(evicted >= 256, "evicted \(evicted)")
    }
}
