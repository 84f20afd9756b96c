import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The long-lived state of one listener: its current policy, its live connections and its counters.
///
/// Survives reloads; only the policy inside is replaced.
public final class ListenerRuntime: Sendable {
    public let name: String
    /// The policy new connections use, and the per-source table when the policy limits sources (kept across
    /// reloads, so that a reload does not forget who has connections open; one lock for both).
    private let policyBox: NIOLockedValueBox<(policy: ListenerPolicy, sources: SourceTracker?, offenses: OffenseTracker?)>
    /// Where bans are asked for and looked up (nil: no ban rule can act).
    let banBoard: BanBoard?
    private let active = Atomic<Int>(0)
    private let refusedOverLimit = Atomic<Int>(0)
    private let accepted = Atomic<Int>(0)
    private let denied = Atomic<Int>(0)
    /// Uptime nanoseconds of the last over-limit warning, to log it at most once a second.
    private let lastLimitWarning = Atomic<Int64>(Int64.min / 2)
    private let refusedForSource = Atomic<Int>(0)
    /// Uptime nanoseconds of the last per-source warning, to log at most twenty a second.
    private let lastSourceWarning = Atomic<Int64>(Int64.min / 2)

    let metrics: ProxyMetrics
    let counters: ListenerCounters
    /// Endings by outcome and the last few bad ones, for the status page.
    public let tally = ListenerTally()
    let budget: ConnectionBudget

    public init(policy: ListenerPolicy, metrics: ProxyMetrics, budget: ConnectionBudget = ConnectionBudget(limit: .max), banBoard: BanBoard? = nil) {
        self.banBoard = banBoard
        self.metrics = metrics
        self.budget = budget
        self.name = policy.name
        metrics.initialize(listener: policy.name)
        self.counters = ListenerCounters(listener: policy.name, metrics: metrics)
        self.policyBox = NIOLockedValueBox((policy, Self.sources(for: policy, keeping: nil), policy.banRule == nil ? nil : OffenseTracker()))
    }

    /// The policy new connections use.
    public var policy: ListenerPolicy {
        policyBox.withLockedValue { $0.policy }
    }

    /// The offense table, while the policy has a ban rule.
    var offenses: OffenseTracker? {
        policyBox.withLockedValue { $0.offenses }
    }

    /// The policy and the per-source table, read together at accept.
    var current: (policy: ListenerPolicy, sources: SourceTracker?) {
        policyBox.withLockedValue { ($0.policy, $0.sources) }
    }

    /// Publishes a new policy for connections accepted from now on.
    public func publish(_ policy: ListenerPolicy) {
        policyBox.withLockedValue {
            $0 = (policy, Self.sources(for: policy, keeping: $0.sources), policy.banRule == nil ? nil : ($0.offenses ?? OffenseTracker()))
        }
    }

    /// The per-source table `policy` needs: the one in use when it is large enough for the listener's
    /// `max_connections` (its counts go on), a larger one when a reload raised it (connections open then
    /// give back to the table they were counted in), none when nothing is limited per source.
    private static func sources(for policy: ListenerPolicy, keeping tracker: SourceTracker?) -> SourceTracker? {
        guard policy.sourceLimits.isEnabled else { return nil }
        let capacity = SourceTracker.capacity(forListenerLimit: policy.maxConnections)
        if let tracker, tracker.capacity >= capacity { return tracker }
        return SourceTracker(capacity: capacity)
    }

    /// The per-source table in use (nil when the listener limits no source).
    public var sourceStatistics: (sources: Int, capacity: Int, evictions: Int, untracked: Int)? {
        guard let tracker = policyBox.withLockedValue({ $0.sources }) else { return nil }
        let statistics = tracker.statistics
        return (statistics.sources, tracker.capacity, statistics.evictions, statistics.untracked)
    }

    /// Connections currently open on this listener.
    public var activeConnections: Int { active.load(ordering: .relaxed) }

    /// Connections accepted since start.
    public var acceptedConnections: Int { accepted.load(ordering: .relaxed) }

    /// Connections refused by the listener's or a route's allow/deny lists since start.
    public var deniedConnections: Int { denied.load(ordering: .relaxed) }

    func countDenied() {
        denied.add(1, ordering: .relaxed)
    }

    /// Connections refused because the listener was at max_connections (outcomes are in the metrics).
    public var refusedOverLimitCount: Int { refusedOverLimit.load(ordering: .relaxed) }

    /// Why a connection was not admitted.
    enum Refusal { case listenerFull, processFull }

    /// Takes a slot for a new connection on this listener and in the process-wide budget; nil when admitted.
    func admit(limit: Int) -> Refusal? {
        accepted.add(1, ordering: .relaxed)
        counters.accepted.increment()
        let now = active.add(1, ordering: .relaxed).newValue
        if now > limit {
            active.subtract(1, ordering: .relaxed)
            return .listenerFull
        }
        guard budget.take() else {
            active.subtract(1, ordering: .relaxed)
            return .processFull
        }
        return nil
    }

    /// True at most once per second, so a flood over max_connections cannot flood the log.
    func shouldWarnOverLimit() -> Bool {
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        let last = lastLimitWarning.load(ordering: .relaxed)
        guard now - last >= 1_000_000_000 else { return false }
        return lastLimitWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    }

    func release() {
        active.subtract(1, ordering: .relaxed)
        budget.give()
    }

    /// Connections refused for their source's limits since start.
    public var refusedForSourceCount: Int { refusedForSource.load(ordering: .relaxed) }

    func countSourceRefusal() {
        refusedForSource.add(1, ordering: .relaxed)
    }

    /// True at most twenty times a second (per-source warnings of many sources at once).
    func shouldWarnSourceLimit(now: Int64) -> Bool {
        let last = lastSourceWarning.load(ordering: .relaxed)
        guard now - last >= 50_000_000 else { return false }
        return lastSourceWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    }

    func countRefusedOverLimit() {
        refusedOverLimit.add(1, ordering: .relaxed)
    }
}
