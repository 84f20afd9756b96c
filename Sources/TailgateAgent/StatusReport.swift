import NIOCore
import TailgateConfig
import TailgateFirewall
import TailgateProxy

/// What /status shows, as JSON for tools and as a table for `tailgate status`.
struct StatusReport: Sendable {
    var json: String
    var text: String

    static func make(_ supervisor: Supervisor) async -> StatusReport {
        let current = await supervisor.current
        let lastReload = await supervisor.history.last
        let lastReloadTime = await supervisor.history.lastTime
        let (runtimes, binds, _) = await supervisor.listenerSnapshot
        let usage = supervisor.parts.usage.snapshot
        let checks = supervisor.parts.checker.snapshot
        let firewall = supervisor.parts.firewall.snapshot
        let uptime = (ContinuousClock.now - supervisor.startedAt).wholeMilliseconds / 1_000
        let configuration = current?.configuration
        let q = JSONText.quote

        var json = "{\"version\":\(q(TailgateVersion.current)),\"started\":\(q(supervisor.startedWallClock)),\"uptime_seconds\":\(uptime)"
        json += ",\"config\":{\"path\":\(q(supervisor.configPath)),\"generation\":\(current?.number ?? 0),\"hash\":\(q(current?.hash ?? ""))}"
        if let lastReload {
            json += ",\"last_reload\":{\"time\":\(q(lastReloadTime ?? "")),\"ok\":\(lastReload.succeeded),\"duration_ms\":\(lastReload.duration.wholeMilliseconds)"
            json += ",\"errors\":[\(lastReload.errors.map(q).joined(separator: ","))]}"
        } else {
            json += ",\"last_reload\":null"
        }
        var text = "tailgate \(TailgateVersion.current), up \(uptime)s, config \(supervisor.configPath)"
        text += " generation \(current?.number ?? 0) (\(current?.shortHash ?? "-"))\n"
        if let lastReload {
            text += "last reload: \(lastReloadTime ?? "?") " + (lastReload.succeeded ? "ok" : "FAILED: \(lastReload.errors.joined(separator: "; "))") + "\n"
        }

        json += ",\"listeners\":["
        text += "\nLISTENER        PROTO  BINDS                               ACTIVE  ACCEPTED  DENIED  ROUTES\n"
        var first = true
        for listener in configuration?.listeners ?? [] {
            guard let runtime = runtimes[listener.name] else { continue }
            let bound = (binds[listener.name] ?? []).map(\.endpointDescription).sorted()
            let routes = listener.routeList.map { "{\"match\":\(q($0.pattern.description)),\"upstream\":\(q($0.upstream))}" }
            json += (first ? "" : ",") + "{\"name\":\(q(listener.name)),\"protocol\":\(q(listener.listenerProtocol.rawValue)),\"binds\":[\(bound.map(q).joined(separator: ","))]"
            json += ",\"active_connections\":\(runtime.activeConnections),\"accepted_connections\":\(runtime.acceptedConnections),\"denied_connections\":\(runtime.deniedConnections)"
            json += ",\"default\":\(listener.routes.defaultUpstream.map(q) ?? "null"),\"routes\":[\(routes.joined(separator: ","))]}"
            text += pad(listener.name, 16) + pad(listener.listenerProtocol.rawValue, 7) + pad(bound.joined(separator: ","), 36) + pad("\(runtime.activeConnections)", 8)
                + pad("\(runtime.acceptedConnections)", 10) + pad("\(runtime.deniedConnections)", 8) + "\(listener.routeList.count)" + (listener.routes.defaultUpstream.map { " + default → \($0)" } ?? "") + "\n"
            first = false
        }
        json += "]"

        json += ",\"upstreams\":["
        // The check's result comes last: a failure's text is as long as it needs to be.
        text += "\nUPSTREAM        SERVER                  STATE      ACTIVE  CERT EXPIRES  LAST CHECK\n"
        first = true
        for (name, upstream) in (configuration?.upstreams ?? [:]).sorted(by: { $0.key < $1.key }) {
            json += (first ? "" : ",") + "{\"name\":\(q(name)),\"send_proxy\":\(q(upstream.sendProxy.rawValue)),\"check\":\(q(upstream.check.kind.rawValue)),\"servers\":["
            first = false
            var firstServer = true
            for address in await supervisor.plan?.servers(of: name) ?? [] {
                let check = checks.first { $0.upstream == name && $0.server == address }
                let checked = upstream.check.kind == .none ? "unchecked" : check?.isUp.map { $0 ? "up" : "down" } ?? "pending"
                // A server skipped after a failed connect (fail_timeout) says so unless checks already call it down.
                let state = checked != "down" && supervisor.parts.healthBoard.isFailing(upstream: name, server: address) ? "skipped" : checked
                let expiry = check?.lastResult?.certificateNotAfter
                json += (firstServer ? "" : ",") + "{\"address\":\(q(address.endpointDescription)),\"state\":\(q(state)),\"active_connections\":\(usage[address] ?? 0)"
                if let result = check?.lastResult {
                    json += ",\"last_check\":{\"time\":\(q(check?.lastCheck ?? "")),\"ok\":\(result.isHealthy),\"result\":\(q(result.summary)),\"duration_ms\":\(result.duration.wholeMilliseconds)}"
                }
                json += ",\"certificate_not_after\":\(expiry.map { "\($0)" } ?? "null")}"
                firstServer = false
                text += pad(name, 16) + pad(address.endpointDescription, 24) + pad(state, 11) + pad("\(usage[address] ?? 0)", 8)
                    + pad(expiry.map(Timestamp.date) ?? "-", 14) + (check?.lastResult?.summary ?? "-") + "\n"
            }
            // Servers whose names have not resolved yet: down, and why.
            let plan = await supervisor.plan
            for server in plan?.serverEntries[name] ?? [] where server.address == nil {
                guard case .hostname(let host, let port) = server.written else { continue }
                let reason = plan?.names.failures[ResolvedNames.Name(host: host, port: port)] ?? "not resolved yet"
                json += (firstServer ? "" : ",") + "{\"address\":\(q(server.written.description)),\"state\":\"unresolved\",\"active_connections\":0"
                json += ",\"resolve_error\":\(q(reason)),\"certificate_not_after\":null}"
                firstServer = false
                text += pad(name, 16) + pad(server.written.description, 24) + pad("unresolved", 11) + pad("0", 8) + pad("-", 14) + reason + "\n"
            }
            json += "]}"
        }
        json += "]"
        let departed = supervisor.parts.usage.departedServers
        if !departed.isEmpty {
            text += "\nservers removed from the configuration that still carry connections:\n"
            for (server, count) in departed.sorted(by: { $0.key.description < $1.key.description }) {
                text += "  \(server.endpointDescription): \(count)\n"
            }
        }
        json += ",\"departed_servers\":[\(departed.map { "{\"address\":\(q($0.key.endpointDescription)),\"active_connections\":\($0.value)}" }.joined(separator: ","))]"

        json += ",\"firewall\":{\"configured\":\(configuration?.firewall != nil),\"enabled\":\(firewall.enabled),\"in_sync\":\(firewall.inSync),\"repairs\":\(firewall.repairs)"
        json += ",\"last_error\":\(firewall.lastError.map(q) ?? "null")"
        text += "\nfirewall: " + (configuration?.firewall == nil ? "not configured" : !firewall.enabled ? "disabled" : firewall.inSync ? "in sync" : "OUT OF STEP")
        text += ", \(firewall.repairs) repairs" + (firewall.lastError.map { ", last error: \($0)" } ?? "") + "\n"
        if firewall.enabled {
            let totals = supervisor.parts.firewall.totals()
            json += ",\"counters\":{" + totals.sorted(by: { $0.key < $1.key }).map { "\(q($0.key)):{\"packets\":\($0.value.packets),\"bytes\":\($0.value.bytes)}" }.joined(separator: ",") + "}"
            for (name, value) in totals.sorted(by: { $0.key < $1.key }) {
                text += "  \(pad(name, 28)) \(value.packets) packets\n"
            }
        }
        json += "}"

        // Bans ([bans]): how many the kernel holds, and the CrowdSec bouncer's last pull.
        if let bans = configuration?.bans, bans.enabled {
            let count = supervisor.parts.bans.lastCount
            json += ",\"bans\":{\"enabled\":true,\"active\":\(count.map(String.init) ?? "null"),\"control_socket\":\(q(bans.controlSocket))"
            text += "bans: \(count.map(String.init) ?? "?") in the kernel, control socket \(bans.controlSocket)"
            if bans.crowdsec != nil {
                let crowdsec = supervisor.parts.crowdsec.snapshot
                json += ",\"crowdsec\":{\"last_result\":\(q(crowdsec.lastResult)),\"pulls\":\(crowdsec.pulls),\"bans_added\":\(crowdsec.bansAdded),\"bans_lifted\":\(crowdsec.bansLifted)}"
                text += "; crowdsec: \(crowdsec.lastResult), \(crowdsec.bansAdded) added, \(crowdsec.bansLifted) lifted"
            }
            json += "}"
            text += "\n"
        } else {
            json += ",\"bans\":{\"enabled\":false}"
        }
        json += "}\n"
        return StatusReport(json: json, text: text)
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
