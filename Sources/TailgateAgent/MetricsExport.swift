import NIOConcurrencyHelpers
import Prometheus
import TailgateConfig
import TailgateFirewall
import TailgateProxy
import TailgateSystem

/// Brings the gauges and the counters kept outside Prometheus (reloads, firewall totals) up to date
/// just before /metrics is emitted.
enum MetricsExport {
    static func update(_ supervisor: Supervisor) async {
        let registry = supervisor.parts.registry
        let sync = supervisor.parts.counterSync
        var exported: [String: Gauge] = [:]
        func gauge(_ name: String, _ unit: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
            let gauge = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: unit, helpText: help), labels: labels)
            exported[name + "_" + unit + labels.map { "|\($0.0)=\($0.1)" }.joined()] = gauge
            return gauge
        }
        defer { supervisor.parts.gaugeSweep.keep(exported, in: registry) }
        func counter(_ name: String, _ help: String, _ labels: [(String, String)], total: Int64) {
            let counter = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "total", helpText: help), labels: labels)
            sync.advance(counter, key: name + labels.map { "|\($0.0)=\($0.1)" }.joined(), to: total)
        }

        let current = await supervisor.current
        gauge("tailgate_config", "generation", "Generation of the configuration in use (1 at start, +1 per applied reload).")
            .set(Int64(current?.number ?? 0))
        let reloads = await supervisor.history.attempts
        let failures = await supervisor.history.failures
        counter("tailgate_reloads", "Reloads attempted (SIGHUP).", [], total: Int64(reloads))
        counter("tailgate_reload_failures", "Reloads refused; the previous configuration kept serving.", [], total: Int64(failures))
        counter("tailgate_log_lines_dropped", "Log lines dropped because standard error was not being read (journald stalled, a pipe's reader hung).",
                [], total: Int64(LogOutput.standardError.droppedLines))
        gauge("tailgate_ready", "", "1 when /readyz answers 200.").set(Int64(await supervisor.notReadyReasons().isEmpty ? 1 : 0))

        let health = supervisor.parts.healthConnections
        let healthCounts = health.counts
        gauge("tailgate_health_connections", "open", "Connections open to the health endpoint now.").set(Int64(health.count))
        counter("tailgate_health_connections_evicted", "Idle health-endpoint connections closed to admit new ones (a peer holding the endpoint).",
                [], total: Int64(healthCounts.evictions))
        counter("tailgate_health_connections_refused", "Health-endpoint connections closed at once: every open one was busy answering.",
                [], total: Int64(healthCounts.refusals))
        gauge("tailgate_relay_threads", "accepting", "Relay threads accepting new connections now (see accept_spread).")
            .set(Int64(supervisor.parts.relay.acceptingThreads))

        let (runtimes, _, _) = await supervisor.listenerSnapshot
        // A removed listener's gauge stays while its connections finish, as a departed server's does.
        for (name, runtime) in runtimes.merging(await supervisor.removedListenersInUse, uniquingKeysWith: { current, _ in current }) {
            gauge("tailgate_connections", "active", "Connections open now, by listener.", [("listener", name)]).set(Int64(runtime.activeConnections))
        }
        let usage = supervisor.parts.usage.snapshot
        var servers = Set(usage.keys)
        if let plan = await supervisor.plan {
            for name in plan.configuration.upstreams.keys { servers.formUnion(plan.servers(of: name)) }
        }
        for server in servers {
            gauge("tailgate_upstream_server_connections", "active", "Connections relayed to each server now.", [("server", server.endpointDescription)])
                .set(Int64(usage[server] ?? 0))
        }
        for state in supervisor.parts.checker.snapshot {
            let labels = [("upstream", state.upstream), ("server", state.server.endpointDescription)]
            if let up = state.isUp {
                gauge("tailgate_upstream_server", "up", "1 when active checks mark the server up, 0 when down.", labels).set(Int64(up ? 1 : 0))
            }
            if let notAfter = state.lastResult?.certificateNotAfter {
                gauge("tailgate_upstream_certificate_expiry", "timestamp_seconds", "notAfter of the server's certificate (TLS checks).", labels)
                    .set(notAfter)
            }
        }

        let firewall = supervisor.parts.firewall.snapshot
        if firewall.enabled, let desired = firewall.desired {
            gauge("tailgate_firewall", "in_sync", "1 when the kernel holds the configured table.").set(Int64(firewall.inSync ? 1 : 0))
            counter("tailgate_firewall_repairs", "Times the table was re-applied after drift.", [], total: Int64(firewall.repairs))
            let totals = supervisor.parts.firewall.totals()
            counter("tailgate_firewall_allowed_packets", "Packets to restricted ports let through from the tailnet.", [],
                    total: Int64(totals["allowed"]?.packets ?? 0))
            for port in desired.portCounters {
                counter("tailgate_firewall_dropped_packets", "Packets to restricted ports dropped or rejected, by protocol and port.",
                        [("proto", port.proto), ("ports", port.ports)], total: Int64(totals[port.name]?.packets ?? 0))
            }
            counter("tailgate_firewall_banned_packets", "Packets from banned sources dropped by the shield.", [],
                    total: Int64(totals["banned"]?.packets ?? 0))
        }
        if let bans = supervisor.parts.bans.lastCount {
            gauge("tailgate_bans", "active", "Bans in the kernel's ban sets (as last read, every few seconds).").set(Int64(bans))
        }
        if await supervisor.current?.configuration.bans.crowdsec != nil {
            let crowdsec = supervisor.parts.crowdsec.snapshot
            gauge("tailgate_crowdsec", "up", "1 when the last pull of CrowdSec's decisions succeeded.").set(Int64(crowdsec.lastResult == "ok" ? 1 : 0))
            counter("tailgate_crowdsec_bans_added", "Bans written from CrowdSec decisions.", [], total: Int64(crowdsec.bansAdded))
            counter("tailgate_crowdsec_bans_lifted", "Bans lifted because CrowdSec deleted or expired their decision.", [], total: Int64(crowdsec.bansLifted))
        }
    }
}

/// Removes the gauges the last export set and this one did not: a removed listener, a server that left
/// the configuration, a removed upstream's check state. Left in place they would report their last
/// value for ever (a down server of a removed upstream would keep an alert firing).
final class GaugeSweep: Sendable {
    private let previous = NIOLockedValueBox<[String: Gauge]>([:])

    func keep(_ current: [String: Gauge], in registry: PrometheusCollectorRegistry) {
        let stale = previous.withLockedValue { previous -> [Gauge] in
            defer { previous = current }
            return previous.filter { current[$0.key] == nil }.map(\.value)
        }
        for gauge in stale { registry.unregisterGauge(gauge) }
    }
}

/// Remembers what each mirrored counter last reached, to increment by the difference.
final class CounterSync: Sendable {
    private let last = NIOLockedValueBox<[String: Int64]>([:])

    func advance(_ counter: Counter, key: String, to total: Int64) {
        let delta = last.withLockedValue { last -> Int64 in
            let previous = last[key] ?? 0
            last[key] = max(previous, total)
            return total - previous
        }
        if delta > 0 { counter.increment(by: delta) }
    }
}
