/// How the kernel's table compares with the desired ruleset.
public enum FirewallDrift: Sendable, Equatable {
    /// The table matches, ignoring handles, counter values, set ids and userdata.
    case inSync
    /// There is no table of that name in the `inet` family.
    case missing
    /// The table exists but differs; one human-readable line per difference,
    /// e.g. `set tcp_ports: elements differ (1 unexpected)` or `chain guard: rule 3 differs`.
    case differs([String])
}
