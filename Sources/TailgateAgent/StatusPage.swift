/// The status page: one self-contained HTML document, complete without JavaScript (every number is in the
/// page as sent) and live with it (`StatusPageAssets.script` refreshes the numbers from the JSON form).
/// Worst first: readiness and what needs attention, then listeners, upstreams, firewall, bans, and the last
/// connections that ended badly. Nothing on it changes state: it has links, and no form.
enum StatusPage {
    /// The Content-Security-Policy the page is sent with: its own inline style and script, requests to the
    /// endpoint itself, nothing else.
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; script-src '\(StatusPageAssets.scriptHash)'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// Routes listed per listener; the JSON has them all.
    static let routesShown = 40

    /// Certificates expiring in fewer days than this are shown in red (the alert's threshold too).
    static let certificateWarningDays: Int64 = 14

    static func html(_ status: StatusSnapshot) -> String {
        var page = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        page += "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        page += "<title>\(status.ready ? "" : "NOT READY · ")tailgate · \(escape(status.configPath))</title>"
        page += "<style>\(StatusPageAssets.style)</style></head>\n"
        page += "<body data-shape=\"\(escape(shape(status)))\">\n<header><h1>tailgate <span class=\"muted\">\(escape(status.version))</span></h1>\n"
        if status.ready {
            page += "<p class=\"banner ok\" id=\"readiness\">Ready</p>\n"
        } else {
            page += "<p class=\"banner bad\" id=\"readiness\">Not ready: \(status.notReadyReasons.map(escape).joined(separator: "; "))</p>\n"
        }
        page += "<p class=\"meta\">generation <b>\(status.generation)</b> · config <code>\(escape(status.configPath))</code> <code title=\"\(escape(status.hash))\">\(escape(status.shortHash))</code>"
        page += " · up <span data-k=\"uptime_seconds\" data-f=\"dur\">\(duration(status.uptimeSeconds))</span> since \(escape(status.started))"
        page += " · <span id=\"updated\">as of \(Timestamp.dateTime(status.now))</span></p>\n</header>\n<main>\n"

        let problems = self.problems(status)
        if !problems.isEmpty {
            page += "<section id=\"attention\"><h2>Needs attention</h2><ul class=\"problems\">"
            page += problems.map { "<li class=\"\($0.severity)\">\($0.html)</li>" }.joined()
            page += "</ul></section>\n"
        }
        page += listeners(status)
        page += upstreams(status)
        page += firewall(status)
        page += bans(status)
        page += recentErrors(status)
        page += "</main>\n<footer>The same as JSON: <a href=\"/status?format=json\">/status?format=json</a> · as text: "
        page += "<a href=\"/status?format=text\">/status?format=text</a> · <a href=\"/metrics\">/metrics</a> · <a href=\"/readyz\">/readyz</a></footer>\n"
        page += "<script>\(StatusPageAssets.script)</script>\n</body></html>\n"
        return page
    }

    /// What the layout depends on, written exactly as the script computes it from the JSON: when it differs,
    /// the script loads the page again instead of patching numbers.
    static func shape(_ status: StatusSnapshot) -> String {
        let states = status.upstreams.map { $0.servers.map(\.state).joined(separator: ",") }.joined(separator: ";")
        return "\(status.generation)|\(status.ready)|\(status.lastReload.map { "\($0.ok)" } ?? "")|\(states)|\(status.departed.count)"
            + "|\(status.firewall.inSync)|\(status.recentEnds.count)"
    }

    private struct Problem {
        var severity: String
        var html: String
    }

    /// Everything an operator must look at, worst first.
    private static func problems(_ status: StatusSnapshot) -> [Problem] {
        var problems: [Problem] = []
        if let reload = status.lastReload, !reload.ok {
            let errors = reload.errors.map { "<li><code>\(escape($0))</code></li>" }.joined()
            problems.append(Problem(severity: "bad", html: "The last reload (\(escape(reload.time))) failed; generation \(status.generation) still serves:<ul>\(errors)</ul>"))
        }
        for upstream in status.upstreams {
            let failing = upstream.servers.filter { $0.severity == 0 }
            let primaries = upstream.servers.filter { !$0.backup }
            if !failing.isEmpty, failing.count == upstream.servers.count {
                problems.append(Problem(severity: "bad", html: "Every server of upstream <b>\(escape(upstream.name))</b> is down."))
            } else if !primaries.isEmpty, primaries.count < upstream.servers.count, primaries.allSatisfy({ $0.severity <= 1 }) {
                problems.append(Problem(severity: "bad", html: "No server of upstream <b>\(escape(upstream.name))</b> can be used (down or skipped): its backup servers serve."))
            }
            for server in failing {
                let why = server.resolveError ?? server.lastCheck?.result ?? server.state
                problems.append(Problem(severity: "bad", html: "<b>\(escape(upstream.name))</b> server <code>\(escape(server.address))</code> is \(server.state): \(escape(why))"))
            }
        }
        if status.firewall.enabled, !status.firewall.inSync {
            problems.append(Problem(severity: "bad", html: "The firewall is out of step with the configuration\(status.firewall.lastError.map { ": " + escape($0) } ?? "")."))
        }
        for upstream in status.upstreams {
            for server in upstream.servers {
                guard let days = server.certificateDays(now: status.now), days < certificateWarningDays else { continue }
                let when = days < 0 ? "expired \(-days) days ago" : "expires in \(days) days"
                problems.append(Problem(severity: "bad", html: "The certificate of <b>\(escape(upstream.name))</b> <code>\(escape(server.address))</code> \(when)."))
            }
            for server in upstream.servers where server.state == "skipped" {
                problems.append(Problem(severity: "warn", html: "<b>\(escape(upstream.name))</b> server <code>\(escape(server.address))</code> is skipped after a failed connect."))
            }
        }
        return problems
    }

    private static func listeners(_ status: StatusSnapshot) -> String {
        var html = "<section id=\"listeners\"><h2>Listeners</h2><table><thead><tr><th>Listener</th><th>Protocol</th><th>Binds</th>"
        html += "<th>Now / limit</th><th>New/s</th><th>Accepted</th><th>Not served</th><th>Routes</th></tr></thead><tbody>"
        for (index, listener) in status.listeners.enumerated() {
            let path = "listeners/#\(index)"
            let refusals = listener.refusals.isEmpty ? "none" : listener.refusals.map { "\(escape($0.outcome)) \($0.count)" }.joined(separator: " · ")
            // The page stays small with thousands of routes: the first ones, and where the rest are.
            var routes = listener.routes.prefix(routesShown).map { "<li><code>\(escape($0.match))</code> → \(escape($0.upstream))</li>" }
            if listener.routes.count > routesShown {
                routes.append("<li>and \(listener.routes.count - routesShown) more: <a href=\"/status?format=json\">/status?format=json</a></li>")
            }
            if let fallback = listener.defaultUpstream { routes.append("<li>default → \(escape(fallback))</li>") }
            html += "<tr><td data-label=\"Listener\"><div><b>\(escape(listener.name))</b></div></td><td data-label=\"Protocol\"><div>\(escape(listener.listenerProtocol))</div></td>"
            html += "<td data-label=\"Binds\"><div><code>\(listener.binds.map(escape).joined(separator: " "))</code></div></td>"
            html += "<td class=\"n\" data-label=\"Now / limit\"><div><span data-k=\"\(path)/active_connections\">\(listener.active)</span> / \(listener.limit)</div></td>"
            html += "<td class=\"n\" data-label=\"New/s\"><div><span data-k=\"\(path)/connections_per_second\" data-f=\"rate\">\(oneDecimal((listener.rate * 100).rounded() / 100))</span></div></td>"
            html += "<td class=\"n\" data-label=\"Accepted\"><div><span data-k=\"\(path)/accepted_connections\">\(listener.accepted)</span></div></td>"
            html += "<td data-label=\"Not served\"><div><span data-k=\"\(path)/refusals\" data-f=\"dict\">\(refusals)</span></div></td>"
            html += "<td data-label=\"Routes\"><div><details><summary>\(listener.routes.count + (listener.defaultUpstream == nil ? 0 : 1))</summary><ul>\(routes.joined())</ul></details></div></td></tr>"
        }
        return html + "</tbody></table></section>\n"
    }

    private static func upstreams(_ status: StatusSnapshot) -> String {
        var html = "<section id=\"upstreams\"><h2>Upstreams</h2><table><thead><tr><th>Upstream</th><th>Server</th><th>State</th>"
        html += "<th>Last check</th><th>Certificate</th><th>Now</th><th>Bytes</th></tr></thead><tbody>"
        // Worst first: upstreams with a failing server, and within each the failing servers.
        // (Paths address the JSON's lists by position, as the JSON orders them; a name may hold any character.)
        let ordered = status.upstreams.enumerated().sorted {
            ($0.element.servers.map(\.severity).min() ?? 3, $0.offset) < ($1.element.servers.map(\.severity).min() ?? 3, $1.offset)
        }
        for (upstreamIndex, upstream) in ordered {
            let servers = upstream.servers.enumerated().sorted { ($0.element.severity, $0.offset) < ($1.element.severity, $1.offset) }
            if servers.isEmpty {
                html += "<tr><td data-label=\"Upstream\"><div><b>\(escape(upstream.name))</b></div></td><td data-label=\"Server\" colspan=\"6\"><div>no servers</div></td></tr>"
            }
            for (serverIndex, server) in servers {
                let path = "upstreams/#\(upstreamIndex)/servers/#\(serverIndex)"
                html += "<tr><td data-label=\"Upstream\"><div><b>\(escape(upstream.name))</b><br><span class=\"muted\">check \(escape(upstream.check))"
                html += upstream.sendProxy == "none" ? "" : ", PROXY \(escape(upstream.sendProxy))"
                html += "</span></div></td><td data-label=\"Server\"><div><code>\(escape(server.address))</code>"
                html += server.backup ? " <span class=\"muted\">backup</span></div></td>" : "</div></td>"
                html += "<td data-label=\"State\"><div><span class=\"st \(escape(server.state))\">\(escape(server.state))</span></div></td>"
                if let error = server.resolveError {
                    html += "<td data-label=\"Last check\"><div>\(escape(error))</div></td>"
                } else if let check = server.lastCheck {
                    html += "<td data-label=\"Last check\"><div><span class=\"\(check.ok ? "good" : "bad")\">\(escape(check.result))</span>"
                    html += "<br><span class=\"muted\">\(escape(check.time)), \(check.durationMilliseconds) ms</span></div></td>"
                } else {
                    html += "<td data-label=\"Last check\"><div>–</div></td>"
                }
                if let days = server.certificateDays(now: status.now), let notAfter = server.certificateNotAfter {
                    let label = days < 0 ? "expired" : "\(days) days"
                    html += "<td data-label=\"Certificate\"><div><span class=\"cert \(days < certificateWarningDays ? "bad" : "good")\">\(label)</span>"
                    html += "<br><span class=\"muted\">until \(Timestamp.date(notAfter))</span></div></td>"
                } else {
                    html += "<td data-label=\"Certificate\"><div>–</div></td>"
                }
                html += "<td class=\"n\" data-label=\"Now\"><div><span data-k=\"\(path)/active_connections\">\(server.active)</span></div></td>"
                html += "<td class=\"n\" data-label=\"Bytes\"><div><span data-k=\"\(path)/bytes\" data-f=\"bytes\">\(bytes(server.bytes))</span></div></td></tr>"
            }
        }
        html += "</tbody></table>"
        if !status.departed.isEmpty {
            html += "<h3 class=\"draining\">Draining: removed from the configuration, still carrying connections</h3><ul>"
            for server in status.departed {
                html += "<li><code>\(escape(server.address))</code>: <span class=\"draining\" data-k=\"departed_servers/\(escape(server.address))/active_connections\">\(server.active)</span> connections</li>"
            }
            html += "</ul>"
        }
        return html + "</section>\n"
    }

    private static func firewall(_ status: StatusSnapshot) -> String {
        let firewall = status.firewall
        var html = "<section id=\"firewall\"><h2>Firewall</h2><p>"
        if !firewall.configured {
            return html + "Not configured.</p></section>\n"
        }
        if !firewall.enabled {
            return html + "Configured but not applied\(firewall.lastError.map { ": " + escape($0) } ?? "").</p></section>\n"
        }
        html += firewall.inSync ? "<span class=\"st in_sync\">in sync</span>" : "<span class=\"st out_of_step\">out of step</span>"
        html += " · \(firewall.repairs) repairs" + (firewall.lastRepair.map { ", the last at \(escape($0))" } ?? "") + "</p>"
        if !firewall.drops.isEmpty {
            html += "<table><thead><tr><th>Restricted port</th><th>Dropped packets</th></tr></thead><tbody>"
            for (index, drop) in firewall.drops.enumerated() {
                html += "<tr><td data-label=\"Restricted port\"><div><code>\(escape(drop.proto)) \(escape(drop.ports))</code></div></td>"
                html += "<td class=\"n\" data-label=\"Dropped packets\"><div><span data-k=\"firewall/dropped/#\(index)/packets\">\(drop.packets)</span></div></td></tr>"
            }
            html += "</tbody></table>"
        }
        return html + "</section>\n"
    }

    private static func bans(_ status: StatusSnapshot) -> String {
        guard let bans = status.bans else { return "" }
        var html = "<section id=\"bans\"><h2>Bans</h2><p><span data-k=\"bans/active\">\(bans.active.map(String.init) ?? "–")</span> sources banned in the kernel"
        if let banned = status.firewall.counters.first(where: { $0.name == "banned" }) {
            html += " · \(banned.packets) packets dropped"
        }
        html += " · control socket <code>\(escape(bans.controlSocket))</code></p>"
        if let crowdsec = bans.crowdsec {
            html += "<p>CrowdSec: <span class=\"\(crowdsec.lastResult == "ok" ? "good" : "bad")\">\(escape(crowdsec.lastResult))</span>"
            html += " · <span data-k=\"bans/crowdsec/bans_added\">\(crowdsec.bansAdded)</span> added · <span data-k=\"bans/crowdsec/bans_lifted\">\(crowdsec.bansLifted)</span> lifted</p>"
        }
        return html + "</section>\n"
    }

    private static func recentErrors(_ status: StatusSnapshot) -> String {
        var html = "<section id=\"errors\"><h2>Recent connection errors</h2>"
        guard !status.recentEnds.isEmpty else { return html + "<p>None since start.</p></section>\n" }
        html += "<table><thead><tr><th>Time</th><th>Listener</th><th>Client</th><th>SNI / Host</th><th>Outcome</th><th>Reason</th></tr></thead><tbody>"
        for end in status.recentEnds {
            html += "<tr><td data-label=\"Time\"><div>\(escape(end.time))</div></td><td data-label=\"Listener\"><div>\(escape(end.listener))</div></td>"
            html += "<td data-label=\"Client\"><div><code>\(escape(end.client))</code></div></td><td data-label=\"SNI / Host\"><div>\(escape(end.serverName ?? "–"))</div></td>"
            html += "<td data-label=\"Outcome\"><div>\(escape(end.outcome))</div></td><td data-label=\"Reason\"><div>\(escape(end.reason ?? ""))</div></td></tr>"
        }
        return html + "</tbody></table></section>\n"
    }

    /// Text made safe for HTML content and attribute values.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            case "\n", "\r", "\t": result += " "
            case _ where character.value < 0x20 || character.value == 0x7F: result += "\u{FFFD}"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }

    /// Matches the script's formats, so that a refresh changes a number's value and not its look.
    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count), unit = 0
        while value >= 1024, unit < 4 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : "\(oneDecimal(value)) \(units[unit])"
    }

    static func duration(_ seconds: Int64) -> String {
        let days = seconds / 86_400, hours = seconds % 86_400 / 3_600, minutes = seconds % 3_600 / 60, rest = seconds % 60
        return days > 0 ? "\(days)d \(hours)h" : hours > 0 ? "\(hours)h \(minutes)m" : minutes > 0 ? "\(minutes)m \(rest)s" : "\(rest)s"
    }

    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
