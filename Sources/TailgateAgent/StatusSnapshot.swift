import Glibc
import NIOConcurrencyHelpers
import NIOCore
import TailgateConfig
import TailgateFirewall
import TailgateProxy

/// Everything /status shows, gathered once per request; `StatusReport` writes it as JSON and as a table,
/// `StatusPage` as HTML.
struct StatusSnapshot: Sendable {
    struct Reload: Sendable {
        var time: String
        var ok: Bool
        var durationMilliseconds: Int64
        var errors: [String]
    }

    struct Listener: Sendable {
        var name: String
        var listenerProtocol: String
        var binds: [String]
        var active: Int
        var limit: Int
        var accepted: Int
        var denied: Int
        /// New connections per second over the last few seconds (since start for the first request).
        var rate: Double
        /// Connections that did not end well, by outcome, most first.
        var refusals: [(outcome: String, count: Int)]
        var defaultUpstream: String?
        var routes: [(match: String, upstream: String)]
    }

    struct Server: Sendable {
        var address: String
        /// up, down, skipped (a failed connect), pending (no check yet), unchecked, unresolved.
        var state: String
        var active: Int
        var bytes: Int
        var lastCheck: (time: String, ok: Bool, result: String, durationMilliseconds: Int64)?
        var certificateNotAfter: Int64?
        var resolveError: String?
        /// A `backup` server: used only when no other server can be.
        var backup = false

        /// Whole days until the certificate expires (negative once it has).
        func certificateDays(now: Int64) -> Int64? {
            certificateNotAfter.map { ($0 - now) / 86_400 - (($0 - now) % 86_400 < 0 ? 1 : 0) }
        }

        /// How bad the state is, worst first.
        var severity: Int {
            switch state {
            case "down", "unresolved": 0
            case "skipped": 1
            case "pending": 2
            default: 3
            }
        }
    }

    struct Upstream: Sendable {
        var name: String
        var sendProxy: String
        var check: String
        var servers: [Server]
    }

    struct PortDrops: Sendable {
        var proto: String
        var ports: String
        var packets: Int
    }

    struct Firewall: Sendable {
        var configured: Bool
        var enabled: Bool
        var inSync: Bool
        var repairs: Int
        var lastRepair: String?
        var lastError: String?
        var counters: [(name: String, packets: Int, bytes: Int)]
        var drops: [PortDrops]
    }

    struct CrowdSec: Sendable {
        var lastResult: String
        var pulls: Int
        var bansAdded: Int
        var bansLifted: Int
    }

    struct Bans: Sendable {
        var active: Int?
        var controlSocket: String
        var crowdsec: CrowdSec?
    }

    struct RecentEnd: Sendable {
        var time: String
        var listener: String
        var client: String
        var serverName: String?
        var outcome: String
        var reason: String?
    }

    var version: String
    var started: String
    var uptimeSeconds: Int64
    /// Seconds since the epoch when the snapshot was taken.
    var now: Int64
    var configPath: String
    var generation: Int
    var hash: String
    var shortHash: String
    var notReadyReasons: [String]
    var lastReload: Reload?
    var listeners: [Listener]
    var upstreams: [Upstream]
    var departed: [(address: String, active: Int)]
    var firewall: Firewall
    /// nil when `[bans]` is off.
    var bans: Bans?
    var recentEnds: [RecentEnd]

    var ready: Bool { notReadyReasons.isEmpty }

    static func gather(_ supervisor: Supervisor) async -> StatusSnapshot {
        let current = await supervisor.current
        let configuration = current?.configuration
        let (runtimes, bindsByListener, _) = await supervisor.listenerSnapshot
        let plan = await supervisor.plan
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        let now = Int64(clock.tv_sec)

        var snapshot = StatusSnapshot(
            version: TailgateVersion.current, started: supervisor.startedWallClock,
            uptimeSeconds: (ContinuousClock.now - supervisor.startedAt).wholeMilliseconds / 1_000, now: now,
            configPath: supervisor.configPath, generation: Int(current?.number ?? 0), hash: current?.hash ?? "", shortHash: current?.shortHash ?? "-",
            notReadyReasons: await supervisor.notReadyReasons(), lastReload: nil, listeners: [], upstreams: [], departed: [],
            firewall: Firewall(configured: false, enabled: false, inSync: false, repairs: 0, counters: [], drops: []), bans: nil, recentEnds: []
        )
        if let last = await supervisor.history.last {
            snapshot.lastReload = Reload(
                time: await supervisor.history.lastTime ?? "", ok: last.succeeded, durationMilliseconds: last.duration.wholeMilliseconds, errors: last.errors
            )
        }

        let rates = supervisor.parts.connectionRates.rates(runtimes.mapValues(\.acceptedConnections), uptime: snapshot.uptimeSeconds)
        var ends: [(Int64, RecentEnd)] = []
        for listener in configuration?.listeners ?? [] {
            guard let runtime = runtimes[listener.name] else { continue }
            let refusals = runtime.tally.outcomes.filter { $0.key != .closed && $0.key != .redirected }
                .map { (outcome: $0.key.rawValue, count: $0.value) }.sorted { ($0.count, $1.outcome) > ($1.count, $0.outcome) }
            snapshot.listeners.append(Listener(
                name: listener.name, listenerProtocol: listener.listenerProtocol.rawValue,
                binds: (bindsByListener[listener.name] ?? []).map(\.endpointDescription).sorted(),
                active: runtime.activeConnections, limit: listener.maxConnections, accepted: runtime.acceptedConnections,
                denied: runtime.deniedConnections, rate: rates[listener.name] ?? 0, refusals: refusals,
                defaultUpstream: listener.routes.defaultUpstream,
                routes: listener.routeList.map { (match: $0.pattern.description, upstream: $0.upstream) }
            ))
            for end in runtime.tally.recentEnds {
                ends.append((end.time, RecentEnd(
                    time: Timestamp.dateTime(end.time), listener: listener.name, client: end.client, serverName: end.serverName,
                    outcome: end.outcome.rawValue, reason: end.reason
                )))
            }
        }
        snapshot.recentEnds = ends.sorted { $0.0 > $1.0 }.prefix(ListenerTally.recentLimit).map(\.1)

        let usage = supervisor.parts.usage.snapshot
        let bytes = supervisor.parts.usage.bytesRelayed
        let checks = supervisor.parts.checker.snapshot
        for (name, upstream) in (configuration?.upstreams ?? [:]).sorted(by: { $0.key < $1.key }) {
            var servers: [Server] = []
            for address in plan?.servers(of: name) ?? [] {
                let check = checks.first { $0.upstream == name && $0.server == address }
                let checked = upstream.check.kind == .none ? "unchecked" : check?.isUp.map { $0 ? "up" : "down" } ?? "pending"
                // A server skipped after a failed connect (fail_timeout) says so unless checks already call it down.
                let state = checked != "down" && supervisor.parts.healthBoard.isFailing(upstream: name, server: address) ? "skipped" : checked
                var server = Server(
                    address: address.endpointDescription, state: state, active: usage[address] ?? 0, bytes: bytes[address] ?? 0,
                    certificateNotAfter: check?.lastResult?.certificateNotAfter
                )
                server.backup = plan?.pools[name]?.isBackup(address) ?? false
                if let result = check?.lastResult {
                    server.lastCheck = (check?.lastCheck ?? "", result.isHealthy, result.summary, result.duration.wholeMilliseconds)
                }
                servers.append(server)
            }
            // Servers whose names have not resolved yet: down, and why.
            for entry in plan?.serverEntries[name] ?? [] where entry.address == nil {
                guard case .hostname(let host, let port) = entry.written else { continue }
                servers.append(Server(
                    address: entry.written.description, state: "unresolved", active: 0, bytes: 0,
                    resolveError: plan?.names.failures[ResolvedNames.Name(host: host, port: port)] ?? "not resolved yet",
                    backup: entry.backup
                ))
            }
            snapshot.upstreams.append(Upstream(name: name, sendProxy: upstream.sendProxy.rawValue, check: upstream.check.kind.rawValue, servers: servers))
        }
        snapshot.departed = supervisor.parts.usage.departedServers.map { (address: $0.key.endpointDescription, active: $0.value) }
            .sorted { $0.address < $1.address }

        let firewall = supervisor.parts.firewall.snapshot
        snapshot.firewall = Firewall(
            configured: configuration?.firewall != nil, enabled: firewall.enabled, inSync: firewall.inSync, repairs: firewall.repairs,
            lastRepair: firewall.lastRepair, lastError: firewall.lastError, counters: [], drops: []
        )
        if firewall.enabled {
            let totals = supervisor.parts.firewall.totals()
            snapshot.firewall.counters = totals.sorted { $0.key < $1.key }.map { (name: $0.key, packets: Int($0.value.packets), bytes: Int($0.value.bytes)) }
            snapshot.firewall.drops = (firewall.desired?.portCounters ?? []).map {
                PortDrops(proto: $0.proto, ports: $0.ports, packets: Int(totals[$0.name]?.packets ?? 0))
            }
        }

        if let bans = configuration?.bans, bans.enabled {
            snapshot.bans = Bans(active: supervisor.parts.bans.lastCount, controlSocket: bans.controlSocket)
            if bans.crowdsec != nil {
                let crowdsec = supervisor.parts.crowdsec.snapshot
                snapshot.bans?.crowdsec = CrowdSec(
                    lastResult: crowdsec.lastResult, pulls: crowdsec.pulls, bansAdded: crowdsec.bansAdded, bansLifted: crowdsec.bansLifted
                )
            }
        }
        return snapshot
    }
}

/// New connections per second per listener, between the status requests a few seconds apart: each request
/// measures against the newest sample at least a second old, and a sample older than `window` is replaced.
final class ConnectionRates: Sendable {
    private struct Sample {
        var time: NIODeadline
        var accepted: [String: Int]
    }

    private let samples = NIOLockedValueBox<[Sample]>([])
    private let window: TimeAmount = .seconds(5)

    func rates(_ accepted: [String: Int], uptime: Int64) -> [String: Double] {
        let now = NIODeadline.now()
        return samples.withLockedValue { samples in
            samples.removeAll { now - $0.time > window * 3 }
            defer {
                if samples.last.map({ now - $0.time >= window }) ?? true { samples.append(Sample(time: now, accepted: accepted)) }
            }
            guard let base = samples.last(where: { now - $0.time >= .seconds(1) }) else {
                // No sample yet: the average since start.
                return accepted.mapValues { Double($0) / Double(max(1, uptime)) }
            }
            let seconds = Double((now - base.time).nanoseconds) / 1e9
            var result: [String: Double] = [:]
            for (name, count) in accepted { result[name] = Double(max(0, count - (base.accepted[name] ?? 0))) / seconds }
            return result
        }
    }
}
