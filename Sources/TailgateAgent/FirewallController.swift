import Logging
import NIOConcurrencyHelpers
import TailgateConfig
import TailgateFirewall

/// Owns tailgate's nftables table: applies it as a reload step, verifies and repairs it,
/// and keeps counter totals across replaces (a replace restarts the kernel's counters at zero).
final class FirewallController: ReloadStep, Sendable {
    let name = "firewall"

    /// What the agent knows about the kernel's table, for logs, /readyz and /status.
    struct State: Sendable {
        var desired: FirewallRuleset?
        var enabled = false
        var inSync = false
        var lastGeneration: UInt32?
        var repairs = 0
        /// When the last repair happened (RFC 3339).
        var lastRepair: String?
        var lastError: String?
        /// The ports last said to be left unrestricted under `enabled = false` (said again only when they change).
        var announcedDisabled: String?
        /// Counter totals from tables replaced earlier, by counter name.
        var carried: [String: CounterValue] = [:]
    }

    private let kernel: NetlinkFirewall
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(kernel: NetlinkFirewall = NetlinkFirewall(), logger: Logger) {
        self.kernel = kernel
        self.logger = logger
    }

    var snapshot: State { state.withLockedValue { $0 } }

    func prepare(_ plan: ProxyPlan) async throws -> PreparedStep {
        try prepare(Self.effective(plan.configuration), shield: Self.shield(plan.configuration))
    }

    /// `[firewall]` as configured; with `[bans]` enabled and no firewall enabled, a table that restricts no
    /// port (its guard matches nothing) so that the shield and the ban sets exist.
    static func effective(_ configuration: TailgateConfiguration) -> FirewallConfiguration? {
        if configuration.bans.enabled, configuration.firewall?.enabled != true {
            var firewall = configuration.firewall ?? FirewallConfiguration()
            firewall.enabled = true
            firewall.tcpPorts = []
            firewall.udpPorts = []
            return firewall
        }
        return configuration.firewall
    }

    /// The shielded ports when `[bans]` is enabled (none otherwise: the ban sets then guard nothing).
    static func shield(_ configuration: TailgateConfiguration) -> ShieldPorts {
        let capacity = UInt32(configuration.bans.capacity)
        guard configuration.bans.enabled else { return ShieldPorts(capacity: capacity) }
        let ports = configuration.shieldedPorts
        return ShieldPorts(tcp: ports.tcp, udp: ports.udp, capacity: capacity)
    }

    /// Applies the table before anything else at start: it needs neither DNS nor a bind, and a host whose
    /// upstream names do not resolve yet, or whose listener cannot be bound, must still not stay open.
    func applyFirst(_ configuration: TailgateConfiguration) async throws {
        await (try prepare(Self.effective(configuration), shield: Self.shield(configuration))).commit()
    }

    private func prepare(_ configured: FirewallConfiguration?, shield: ShieldPorts) throws -> PreparedStep {
        let previous = state.withLockedValue { $0 }
        guard let configuration = configured, configuration.enabled else {
            let wasEnabled = previous.enabled
            let ports = configured.map { configured in
                (tcp: configured.tcpPorts.map(\.description).joined(separator: ","), udp: configured.udpPorts.map(\.description).joined(separator: ","))
            }
            let announcement = ports.map { "\($0.tcp)|\($0.udp)" }
            let firstAnnouncement = previous.announcedDisabled == nil
            return PreparedStep(
                commit: { [self] in
                    state.withLockedValue { $0.enabled = false; $0.desired = nil; $0.inSync = false; $0.announcedDisabled = announcement }
                    if let ports, !wasEnabled, announcement != previous.announcedDisabled {
                        logger.info("firewall disabled (enabled = false); not touching nftables. It would restrict these ports to the tailnet (see `tailgate firewall plan`)", metadata: [
                            "tcp_ports": .string(ports.tcp), "udp_ports": .string(ports.udp),
                        ])
                    }
                    if ports != nil, !wasEnabled, firstAnnouncement {
                        // A table from an earlier run (or `firewall apply`) still restricts ports; say so when
                        // the kernel can be asked (without CAP_NET_ADMIN it cannot, and nothing is said).
                        if (try? kernel.tableExists()) == true {
                            logger.warning("table inet tailgate from before is still in place and restricts its ports; tailgate leaves it (remove it with `tailgate firewall flush`)")
                        }
                    }
                    if wasEnabled {
                        logger.warning("firewall disabled in the configuration; table inet tailgate is left in place (remove it with `tailgate firewall flush`)")
                    }
                },
                rollback: {}
            )
        }
        let ruleset = FirewallRuleset(configuration, shield: shield)
        if previous.enabled, previous.desired == ruleset, previous.inSync {
            return PreparedStep(commit: {}, rollback: {})
        }
        var keptBans = 0
        do {
            keptBans = try replace(with: ruleset)
        } catch {
            switch error {
            case .permissionDenied, .unavailable:
                throw FirewallUnavailable(underlying: error)
            case .rejected, .system, .notFound:
                throw error
            }
        }
        return PreparedStep(
            commit: { [self, keptBans] in
                state.withLockedValue { $0.enabled = true; $0.desired = ruleset }
                var metadata: Logger.Metadata = [
                    "tcp_ports": .string(configuration.tcpPorts.map(\.description).joined(separator: ",")),
                    "udp_ports": .string(configuration.udpPorts.map(\.description).joined(separator: ",")),
                ]
                if !shield.tcp.isEmpty || !shield.udp.isEmpty {
                    metadata["shielded_tcp_ports"] = .string(shield.tcp.map(\.description).joined(separator: ","))
                    metadata["shielded_udp_ports"] = .string(shield.udp.map(\.description).joined(separator: ","))
                    metadata["bans_kept"] = .stringConvertible(keptBans)
                }
                logger.info("firewall applied", metadata: metadata)
            },
            rollback: { [self] in
                // A later step failed: put the previous table back (or remove ours if there was none).
                do {
                    if let old = previous.desired { try replace(with: old) } else { try kernel.remove(tableName: ruleset.tableName) }
                } catch {
                    logger.error("firewall rollback failed: \(error)")
                }
            }
        )
    }

    /// Replaces the kernel's table, first folding the current counters into the carried totals.
    @discardableResult
    private func replace(with ruleset: FirewallRuleset) throws(FirewallError) -> Int {
        if let current = try? kernel.counters(ruleset) {
            state.withLockedValue { state in
                for (name, value) in current.named { state.carried[name, default: .zero] += value }
            }
        }
        let kept = try kernel.apply(ruleset)
        let generation = try? kernel.generation()
        state.withLockedValue { $0.inSync = true; $0.lastGeneration = generation; $0.lastError = nil }
        return kept
    }

    /// Stops verifying and repairing: the process handed over to a successor, which owns the table now (and
    /// may apply another configuration's). The table stays as it is.
    func standDown() {
        state.withLockedValue { $0.enabled = false }
    }

    /// One verification pass: cheap when the ruleset generation did not move; re-applies on drift.
    func verifyAndRepair() {
        let current = state.withLockedValue { $0 }
        guard current.enabled, let desired = current.desired else { return }
        do {
            let generation = try kernel.generation()
            if generation == current.lastGeneration, current.inSync { return }
            // (A /readyz probe may already have seen the drift and cleared inSync; repair all the same.)
            let drift = try kernel.verify(desired)
            switch drift {
            case .inSync:
                state.withLockedValue { $0.lastGeneration = generation; $0.inSync = true; $0.lastError = nil }
            case .missing, .differs:
                let detail = if case .differs(let differences) = drift { differences.joined(separator: "; ") } else { "table missing" }
                logger.warning("firewall drift detected; re-applying", metadata: ["drift": .string(detail)])
                state.withLockedValue { $0.inSync = false }
                try replace(with: desired)
                state.withLockedValue { $0.repairs += 1; $0.lastRepair = Timestamp.now() }
                logger.info("firewall repaired", metadata: ["repairs": .stringConvertible(state.withLockedValue { $0.repairs })])
            }
        } catch {
            state.withLockedValue { $0.inSync = false; $0.lastError = error.description }
            logger.error("firewall check failed: \(error)")
        }
    }

    /// Re-checks, without repairing, whether the kernel still holds the desired table (for /readyz);
    /// cheap while the ruleset generation has not moved.
    func refreshInSync() {
        let current = state.withLockedValue { $0 }
        guard current.enabled, let desired = current.desired, current.inSync else { return }
        guard let generation = try? kernel.generation(), generation != current.lastGeneration else { return }
        let drift = (try? kernel.verify(desired)) ?? .missing
        state.withLockedValue { state in
            if drift == .inSync {
                state.lastGeneration = generation
            } else {
                state.inSync = false
                state.lastError = drift == .missing ? "table inet \(desired.tableName) is missing" : "\(drift)"
            }
        }
    }

    /// Counter totals since start: carried totals plus what the kernel's table holds now.
    func totals() -> [String: CounterValue] {
        let current = state.withLockedValue { $0 }
        var result = current.carried
        if let desired = current.desired, let live = try? kernel.counters(desired) {
            for (name, value) in live.named { result[name, default: .zero] += value }
        }
        return result
    }
}

extension FirewallCounters {
    /// Every counter by its name in the table.
    var named: [String: CounterValue] {
        var result = perPort
        result["allowed"] = allowed
        result["dropped"] = dropped
        result["banned"] = banned
        return result
    }
}

extension CounterValue {
    static let zero = CounterValue(packets: 0, bytes: 0)

    static func += (lhs: inout CounterValue, rhs: CounterValue) {
        lhs = CounterValue(packets: lhs.packets + rhs.packets, bytes: lhs.bytes + rhs.bytes)
    }
}

/// The firewall cannot be applied at all on this host (no privilege, no nf_tables).
struct FirewallUnavailable: Error, CustomStringConvertible {
    let underlying: FirewallError
    var description: String {
        "\(underlying); to run the proxy without the firewall, set `enabled = false` in [firewall]"
    }
}
