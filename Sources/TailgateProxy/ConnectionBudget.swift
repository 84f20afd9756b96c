import Synchronization

/// The process-wide limit on open client connections (`[global] max_connections`), over all listeners:
/// what keeps a flood on one port from taking the descriptors every other port needs.
public final class ConnectionBudget: Sendable {
    private let active = Atomic<Int>(0)
    private let limitValue: Atomic<Int>
    private let refused = Atomic<Int>(0)

    public init(limit: Int) {
        limitValue = Atomic(limit)
    }

    /// The limit new connections are held to; a reload may change it.
    public var limit: Int {
        get { limitValue.load(ordering: .relaxed) }
        set { limitValue.store(newValue, ordering: .relaxed) }
    }

    public var activeConnections: Int { active.load(ordering: .relaxed) }

    /// Connections refused because the global limit was reached.
    public var refusedCount: Int { refused.load(ordering: .relaxed) }

    /// Takes a slot; false when the process is at its limit.
    func take() -> Bool {
        if active.add(1, ordering: .relaxed).newValue > limit {
            active.subtract(1, ordering: .relaxed)
            refused.add(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func give() {
        active.subtract(1, ordering: .relaxed)
    }

    /// Descriptors kept for the rest of the agent: the health endpoint's (256 connections and 256 set
    /// aside at most), listening sockets, netlink, the log and the control socket.
    public static let agentReserve = 768

    /// The default when the config sets none: a third of the open-file limit (a relayed connection holds a
    /// client and an upstream socket, and a pipe pair while bulk is in flight), less the agent's reserve.
    public static func defaultLimit(openFileLimit: Int) -> Int {
        max(64, (openFileLimit - agentReserve) / 3)
    }
}
