import Foundation

/// The metric names the shipped Grafana dashboard and Prometheus alert rules use.
enum DashboardMetrics {
    /// Loads docs/grafana/tailgate-dashboard.json (it must be valid JSON) and scans it and the alert rules for metric names.
    static func referenced() throws -> Set<String> {
        let root = Sandbox.repositoryRoot
        let dashboard = try Data(contentsOf: URL(fileURLWithPath: "\(root)/docs/grafana/tailgate-dashboard.json"))
        _ = try JSONSerialization.jsonObject(with: dashboard)
        let alerts = try String(contentsOfFile: "\(root)/docs/prometheus/tailgate-alerts.yml", encoding: .utf8)
        var names = Set<String>()
        for text in [String(decoding: dashboard, as: UTF8.self), alerts] {
            let regex = try NSRegularExpression(pattern: "tailgate_[a-z_]+")
            for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                guard let range = Range(match.range, in: text) else { continue }
                var name = String(text[range])
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && name.contains("duration_seconds") {
                    name = String(name.dropLast(suffix.count))
                }
                if !name.hasSuffix("_") { names.insert(name) }
            }
        }
        return names
    }

    /// Metric family names in a /metrics body (from its # TYPE lines).
    static func exposed(_ metrics: String) -> Set<String> {
        Set(metrics.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ")
            return parts.count >= 3 && parts[0] == "#" && parts[1] == "TYPE" ? String(parts[2]) : nil
        })
    }
}
