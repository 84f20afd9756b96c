import TailgateConfig
import TailgateProxy

/// Answers the endpoint's paths from the supervisor's state. Every path only reads: nothing a visitor
/// sends changes anything.
struct HealthResponder: Sendable {
    let supervisor: Supervisor

    /// Answers a request whose head parsed; `accept` is its Accept header, if any.
    func respond(method: String, target: String, accept: String?) async -> HealthResponse {
        guard method == "GET" || method == "HEAD" else {
            return HealthResponse(status: 405, contentType: "text/plain", body: "only GET and HEAD\n", extraHeaders: [("Allow", "GET, HEAD")])
        }
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? "/"
        let query = parts.count > 1 ? String(parts[1]) : ""
        guard path.hasPrefix("/") else {
            return HealthResponse(status: 400, contentType: "text/plain", body: "the request target must be a path\n")
        }
        switch path {
        case "/healthz":
            let silent = await LivenessRound(loops: supervisor.parts.healthLoops, relay: supervisor.parts.relay).wait(upTo: .seconds(1))
            return HealthResponse(
                status: silent.isEmpty ? 200 : 503, contentType: "text/plain",
                body: silent.isEmpty ? "ok\n" : "not responding: \(silent.joined(separator: ", "))\n"
            )
        case "/readyz":
            let reasons = await supervisor.notReadyReasons()
            let body = reasons.isEmpty
                ? "{\"ready\":true}\n"
                : "{\"ready\":false,\"reasons\":[\(reasons.map(JSONText.quote).joined(separator: ","))]}\n"
            return HealthResponse(status: reasons.isEmpty ? 200 : 503, contentType: "application/json", body: body)
        case "/", "/status":
            let snapshot = await StatusSnapshot.gather(supervisor)
            let format = Self.format(path: path, query: query, accept: accept)
            switch format {
            case .text: return HealthResponse(status: 200, contentType: "text/plain; charset=utf-8", body: StatusReport.text(snapshot))
            case .json: return HealthResponse(status: 200, contentType: "application/json", body: StatusReport.json(snapshot))
            case .html:
                return HealthResponse(
                    status: 200, contentType: "text/html; charset=utf-8", body: StatusPage.html(snapshot),
                    extraHeaders: [("Content-Security-Policy", StatusPage.contentSecurityPolicy), ("X-Content-Type-Options", "nosniff"),
                                   ("Referrer-Policy", "no-referrer"), ("Vary", "Accept")]
                )
            }
        case "/metrics":
            await MetricsExport.update(supervisor)
            return HealthResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: supervisor.parts.registry.emitToString())
        default:
            return HealthResponse(status: 404, contentType: "text/plain", body: "not found; try /, /healthz, /readyz, /status, /metrics\n")
        }
    }

    enum Format { case html, json, text }

    /// `/` is the page; `/status` is JSON unless `format=` says otherwise or the client (a browser) asks for
    /// text/html, so that tools and scripts keep getting JSON.
    static func format(path: String, query: String, accept: String?) -> Format {
        for pair in query.split(separator: "&") {
            switch pair {
            case "format=json": return .json
            case "format=text": return .text
            case "format=html": return .html
            default: continue
            }
        }
        if path == "/" { return .html }
        return accept?.lowercased().contains("text/html") == true ? .html : .json
    }
}
