/// The named counters of the table. A full replace (apply) restarts them all at zero, so a caller that
/// wants running totals reads them just before each apply and adds them up.
public struct FirewallCounters: Sendable, Equatable {
    /// Packets from the tailnet that reached a protected port (counter `allowed`).
    public var allowed: CounterValue
    /// Every packet the table dropped or rejected: the sum of the per-port counters and the catch-all
    /// counter `dropped` (which stays at zero unless a packet reaches the guard chain without matching
    /// any per-port rule).
    public var dropped: CounterValue
    /// The per-port drop counters, keyed by `PortCounter.name` (e.g. `dropped_tcp_5432`).
    public var perPort: [String: CounterValue]
    /// Packets from banned sources dropped by the shield (counter `banned`; not part of `dropped`).
    public var banned = CounterValue()

    /// Counters; all zero by default.
    public init(allowed: CounterValue = CounterValue(), dropped: CounterValue = CounterValue(), perPort: [String: CounterValue] = [:]) {
        self.allowed = allowed
        self.dropped = dropped
        self.perPort = perPort
    }
}
