/// What /status shows, as JSON for tools (`/status`, `tailgate status --json`) and as a table for
/// `tailgate status`.
enum StatusReport {
    static func json(_ status: StatusSnapshot) -> String {
        let q = JSONText.quote
        func list(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }
        func optional(_ text: String?) -> String { text.map(q) ?? "null" }

        var json = "{\"version\":\(q(status.version)),\"started\":\(q(status.started)),\"uptime_seconds\":\(status.uptimeSeconds),\"time\":\(status.now)"
        json += ",\"config\":{\"path\":\(q(status.configPath)),\"generation\":\(status.generation),\"hash\":\(q(status.hash))}"
        json += ",\"ready\":\(status.ready),\"not_ready_reasons\":\(list(status.notReadyReasons.map(q)))"
        if let reload = status.lastReload {
            json += ",\"last_reload\":{\"time\":\(q(reload.time)),\"ok\":\(reload.ok),\"duration_ms\":\(reload.durationMilliseconds)"
            json += ",\"errors\":\(list(reload.errors.map(q)))}"
        } else {
            json += ",\"last_reload\":null"
        }

        json += ",\"listeners\":" + list(status.listeners.map { listener in
            let routes = listener.routes.map { "{\"match\":\(q($0.match)),\"upstream\":\(q($0.upstream))}" }
            let refusals = listener.refusals.map { "\(q($0.outcome)):\($0.count)" }.joined(separator: ",")
            return "{\"name\":\(q(listener.name)),\"protocol\":\(q(listener.listenerProtocol)),\"binds\":\(list(listener.binds.map(q)))"
                + ",\"active_connections\":\(listener.active),\"accepted_connections\":\(listener.accepted),\"denied_connections\":\(listener.denied)"
                + ",\"default\":\(optional(listener.defaultUpstream)),\"routes\":\(list(routes))"
                + ",\"max_connections\":\(listener.limit),\"connections_per_second\":\(rounded(listener.rate)),\"refusals\":{\(refusals)}}"
        })

        json += ",\"upstreams\":" + list(status.upstreams.map { upstream in
            "{\"name\":\(q(upstream.name)),\"send_proxy\":\(q(upstream.sendProxy)),\"check\":\(q(upstream.check)),\"servers\":"
                + list(upstream.servers.map { server in
                    var json = "{\"address\":\(q(server.address)),\"state\":\(q(server.state)),\"active_connections\":\(server.active)"
                    if server.backup { json += ",\"backup\":true" }
                    if let check = server.lastCheck {
                        json += ",\"last_check\":{\"time\":\(q(check.time)),\"ok\":\(check.ok),\"result\":\(q(check.result)),\"duration_ms\":\(check.durationMilliseconds)}"
                    }
                    if let resolveError = server.resolveError { json += ",\"resolve_error\":\(q(resolveError))" }
                    json += ",\"certificate_not_after\":\(server.certificateNotAfter.map { "\($0)" } ?? "null")"
                    json += ",\"certificate_days\":\(server.certificateDays(now: status.now).map { "\($0)" } ?? "null")"
                    return json + ",\"bytes\":\(server.bytes)}"
                }) + "}"
        })
        json += ",\"departed_servers\":" + list(status.departed.map { "{\"address\":\(q($0.address)),\"active_connections\":\($0.active)}" })

        let firewall = status.firewall
        json += ",\"firewall\":{\"configured\":\(firewall.configured),\"enabled\":\(firewall.enabled),\"in_sync\":\(firewall.inSync),\"repairs\":\(firewall.repairs)"
        json += ",\"last_repair\":\(optional(firewall.lastRepair)),\"last_error\":\(optional(firewall.lastError))"
        if firewall.enabled {
            json += ",\"counters\":{" + firewall.counters.map { "\(q($0.name)):{\"packets\":\($0.packets),\"bytes\":\($0.bytes)}" }.joined(separator: ",") + "}"
            json += ",\"dropped\":" + list(firewall.drops.map { "{\"proto\":\(q($0.proto)),\"ports\":\(q($0.ports)),\"packets\":\($0.packets)}" })
        }
        json += "}"

        if let bans = status.bans {
            json += ",\"bans\":{\"enabled\":true,\"active\":\(bans.active.map(String.init) ?? "null"),\"control_socket\":\(q(bans.controlSocket))"
            if let crowdsec = bans.crowdsec {
                json += ",\"crowdsec\":{\"last_result\":\(q(crowdsec.lastResult)),\"pulls\":\(crowdsec.pulls),\"bans_added\":\(crowdsec.bansAdded),\"bans_lifted\":\(crowdsec.bansLifted)}"
            }
            json += "}"
        } else {
            json += ",\"bans\":{\"enabled\":false}"
        }
        json += ",\"recent_errors\":" + list(status.recentEnds.map {
            "{\"time\":\(q($0.time)),\"listener\":\(q($0.listener)),\"client\":\(q($0.client)),\"sni\":\(optional($0.serverName))"
                + ",\"outcome\":\(q($0.outcome)),\"reason\":\(optional($0.reason))}"
        })
        return json + "}\n"
    }

    static func text(_ status: StatusSnapshot) -> String {
        var text = "tailgate \(status.version), up \(status.uptimeSeconds)s, config \(status.configPath)"
        text += " generation \(status.generation) (\(status.shortHash)), "
        text += (status.ready ? "ready" : "NOT READY: \(status.notReadyReasons.joined(separator: "; "))") + "\n"
        if let reload = status.lastReload {
            text += "last reload: \(reload.time) " + (reload.ok ? "ok" : "FAILED: \(reload.errors.joined(separator: "; "))") + "\n"
        }

        text += "\nLISTENER        PROTO  BINDS                               ACTIVE  ACCEPTED  DENIED  ROUTES\n"
        for listener in status.listeners {
            text += pad(listener.name, 16) + pad(listener.listenerProtocol, 7) + pad(listener.binds.joined(separator: ","), 36) + pad("\(listener.active)", 8)
                + pad("\(listener.accepted)", 10) + pad("\(listener.denied)", 8) + "\(listener.routes.count)"
                + (listener.defaultUpstream.map { " + default → \($0)" } ?? "") + "\n"
        }

        // The check's result comes last: a failure's text is as long as it needs to be.
        text += "\nUPSTREAM        SERVER                  STATE      ACTIVE  CERT EXPIRES  LAST CHECK\n"
        for upstream in status.upstreams {
            for server in upstream.servers {
                text += pad(upstream.name, 16) + pad(server.address + (server.backup ? " (backup)" : ""), 24) + pad(server.state, 11) + pad("\(server.active)", 8)
                    + pad(server.certificateNotAfter.map(Timestamp.date) ?? "-", 14) + (server.resolveError ?? server.lastCheck?.result ?? "-") + "\n"
            }
        }
        if !status.departed.isEmpty {
            text += "\nservers removed from the configuration that still carry connections:\n"
            for server in status.departed { text += "  \(server.address): \(server.active)\n" }
        }

        let firewall = status.firewall
        text += "\nfirewall: " + (!firewall.configured ? "not configured" : !firewall.enabled ? "disabled" : firewall.inSync ? "in sync" : "OUT OF STEP")
        text += ", \(firewall.repairs) repairs" + (firewall.lastError.map { ", last error: \($0)" } ?? "") + "\n"
        for counter in firewall.counters {
            text += "  \(pad(counter.name, 28)) \(counter.packets) packets\n"
        }
        if let bans = status.bans {
            text += "bans: \(bans.active.map(String.init) ?? "?") in the kernel, control socket \(bans.controlSocket)"
            if let crowdsec = bans.crowdsec {
                text += "; crowdsec: \(crowdsec.lastResult), \(crowdsec.bansAdded) added, \(crowdsec.bansLifted) lifted"
            }
            text += "\n"
        }
        // What did not end well, and the last few of them, as the log showed them.
        let refused = status.listeners.filter { !$0.refusals.isEmpty }
        if !refused.isEmpty {
            text += "\nnot served since start:\n"
            for listener in refused {
                text += "  \(pad(listener.name, 14)) " + listener.refusals.map { "\($0.outcome) \($0.count)" }.joined(separator: ", ") + "\n"
            }
        }
        if !status.recentEnds.isEmpty {
            text += "\nrecent connection errors:\n"
            for end in status.recentEnds {
                text += "  \(end.time) \(pad(end.listener, 12)) \(pad(end.client, 24)) \(pad(end.serverName ?? "-", 24)) \(end.outcome)"
                    + (end.reason.map { " (\($0))" } ?? "") + "\n"
            }
        }
        return text
    }

    /// A rate with two decimals at most (JSON has no room for 0.30000000000000004).
    static func rounded(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100)" + (fraction == 0 ? "" : fraction < 10 ? ".0\(fraction)" : fraction % 10 == 0 ? ".\(fraction / 10)" : ".\(fraction)")
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
