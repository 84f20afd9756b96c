import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Prometheus
import TailgateConfig
import TailgateProxy

/// Answers the endpoint's paths from the supervisor's state.
struct HealthResponder: Sendable {
    let supervisor: Supervisor

    func respond(method: HTTPMethod, uri: String) async -> HealthResponse {
        guard method == .GET || method == .HEAD else {
            return HealthResponse(status: .methodNotAllowed, contentType: "text/plain", body: "only GET and HEAD\n")
        }
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? "/"
        let query = parts.count > 1 ? String(parts[1]) : ""
        switch path {
        case "/healthz":
            let silent = await LivenessRound(loops: supervisor.parts.healthLoops, relay: supervisor.parts.relay).wait(upTo: .seconds(1))
            return HealthResponse(
                status: silent.isEmpty ? .ok : .serviceUnavailable, contentType: "text/plain",
                body: silent.isEmpty ? "ok\n" : "not responding: \(silent.joined(separator: ", "))\n"
            )
        case "/readyz":
            let reasons = await supervisor.notReadyReasons()
            let body = reasons.isEmpty
                ? "{\"ready\":true}\n"
                : "{\"ready\":false,\"reasons\":[\(reasons.map(JSONText.quote).joined(separator: ","))]}\n"
            return HealthResponse(status: reasons.isEmpty ? .ok : .serviceUnavailable, contentType: "application/json", body: body)
        case "/status":
            let report = await StatusReport.make(supervisor)
            if query.contains("format=text") {
                return HealthResponse(status: .ok, contentType: "text/plain; charset=utf-8", body: report.text)
            }
            return HealthResponse(status: .ok, contentType: "application/json", body: report.json)
        case "/metrics":
            await MetricsExport.update(supervisor)
            return HealthResponse(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: supervisor.parts.registry.emitToString()
            )
        default:
            return HealthResponse(status: .notFound, contentType: "text/plain", body: "not found; try /healthz, /readyz, /status, /metrics\n")
        }
    }
}
