import Foundation
import TailgateTestSupport
import Testing

/// The alert rules and the dashboard against a real Prometheus (the Debian package): `promtool check rules`
/// and the rules' unit tests; a Prometheus scraping a real tailgate sees the upstream-down alert go pending
/// and then firing when the upstream stops; every query of the Grafana dashboard runs, and every series it
/// names was scraped (the firewall's only exist with [firewall] enabled, which needs a namespace).
@Suite(.serialized) struct PrometheusTests {
    static let rules = "\(Sandbox.repositoryRoot)/docs/prometheus/tailgate-alerts.yml"

    @Test func theAlertRulesLoadAndTheirUnitTestsPass() throws {
        let promtool = try #require(Command.executable(named: "promtool"), "promtool is missing (scripts/install-deps installs prometheus)")
        let check = Command.run(promtool, ["check", "rules", Self.rules])
        #expect(check.status == 0 && check.output.contains("SUCCESS: 12 rules found"), "\(check.output)")
        let tests = Command.run(promtool, ["test", "rules", "\(Sandbox.repositoryRoot)/docs/prometheus/tailgate-alerts.test.yml"])
        #expect(tests.status == 0 && tests.output.contains("SUCCESS"), "\(tests.output)")
    }

    /// GET `path` of the Prometheus at `port` as JSON (nil when it does not answer).
    static func api(_ port: Int, _ path: String) -> [String: Any]? {
        let result = Command.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(port)\(path)"])
        guard result.status == 0, let data = result.output.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    static func alertState(_ port: Int, _ name: String) -> String? {
        let alerts = ((api(port, "/api/v1/alerts")?["data"] as? [String: Any])?["alerts"] as? [[String: Any]]) ?? []
        return alerts.first { ($0["labels"] as? [String: String])?["alertname"] == name }?["state"] as? String
    }

    @Test func aRealPrometheusSeesTheUpstreamDownAlertAndEveryDashboardSeries() throws {
        let prometheus = try #require(Command.executable(named: "prometheus"), "prometheus is missing (scripts/install-deps installs it)")
        let sandbox = try Sandbox("prometheus")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let app = try NginxUpstream.start("app", in: sandbox)
        let port = TestPort.free(), health = TestPort.free(), web = TestPort.free()
        _ = try TailgateInstance.start(config: HealthIntegrationTests.checkedConfig(port: port, health: health, app: app, in: sandbox, interval: "500ms"), in: sandbox)
        for _ in 0..<3 { #expect(curl(sandbox, host: "app.example.com", port: port).output == "app 127.0.0.1 app.example.com\n") }

        // The rules as shipped, but for the down alert's `for:`, shortened to fit a test.
        let shipped = try String(contentsOfFile: Self.rules, encoding: .utf8)
        let quick = shipped.replacingOccurrences(of: "expr: tailgate_upstream_server_up == 0\n        for: 5m", with: "expr: tailgate_upstream_server_up == 0\n        for: 4s")
            .replacingOccurrences(of: "(tailgate_upstream_server_up) == 0\n        for: 1m", with: "(tailgate_upstream_server_up) == 0\n        for: 4s")
        #expect(quick.components(separatedBy: "for: 4s").count == 3, "both `for:` shortened")
        try sandbox.write("rules.yml", quick)
        try sandbox.write("prometheus.yml", """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: ["\(sandbox.path("rules.yml"))"]
            scrape_configs:
              - job_name: tailgate
                static_configs:
                  - targets: ["127.0.0.1:\(health)"]
            """)
        let server = try sandbox.start("prometheus", prometheus, [
            "--config.file=\(sandbox.path("prometheus.yml"))", "--storage.tsdb.path=\(sandbox.path("tsdb"))",
            "--web.listen-address=127.0.0.1:\(web)",
        ])
        defer { _ = server.stop() }
        #expect(Poll.until(timeout: 60) {
            let result = (Self.api(web, "/api/v1/query?query=tailgate_upstream_server_up")?["data"] as? [String: Any])?["result"] as? [[String: Any]]
            return (result?.first?["value"] as? [Any])?.last as? String == "1"
        }, "\(server.output.suffix(2_000))")

        // Every dashboard query runs, and every series it names was scraped.
        let dashboard = try String(contentsOfFile: "\(Sandbox.repositoryRoot)/docs/grafana/tailgate-dashboard.json", encoding: .utf8)
        let object = try JSONSerialization.jsonObject(with: Data(dashboard.utf8))
        var expressions: [String] = []
        func collect(_ value: Any) {
            if let dictionary = value as? [String: Any] {
                if let expr = dictionary["expr"] as? String { expressions.append(expr) }
                dictionary.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(object)
        #expect(expressions.count >= 10)
        let names = Set((Self.api(web, "/api/v1/label/__name__/values")?["data"] as? [String]) ?? [])
        for written in expressions {
            // Grafana's variables as Grafana would fill them in for "all instances, the last hour".
            let expression = written.replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$__range", with: "1h")
                .replacingOccurrences(of: "${instance}", with: ".*").replacingOccurrences(of: "$instance", with: ".*")
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let answer = Self.api(web, "/api/v1/query?query=\(encoded)")
            #expect(answer?["status"] as? String == "success", "\(expression): \(String(describing: answer))")
            let used = expression.matches(of: /tailgate_[a-z_]+/).map { String($0.output) }
            for name in used where !name.hasPrefix("tailgate_firewall_") {
                #expect(names.contains(name), "\(name) (in \(expression)) was not scraped")
            }
        }

        // While the upstream serves, the alert is not active (the dashboard's queries above took a few scrapes).
        #expect(Self.alertState(web, "TailgateUpstreamServerDown") == nil)
        // The upstream stops: the check marks it down, the alert goes pending, then firing.
        _ = app.process.stop()
        #expect(Poll.until(timeout: 60) { Self.alertState(web, "TailgateUpstreamServerDown") != nil }, "\(server.output.suffix(2_000))")
        #expect(Poll.until(timeout: 60) { Self.alertState(web, "TailgateUpstreamServerDown") == "firing" })
        #expect(Poll.until(timeout: 60) { Self.alertState(web, "TailgateAllServersOfUpstreamDown") == "firing" })
    }
}
