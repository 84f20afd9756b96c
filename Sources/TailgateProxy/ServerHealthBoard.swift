import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Which upstream servers active checks have marked down; read by balancing, written by the checker.
/// Keyed by upstream name and address, so it survives reloads.
public final class ServerHealthBoard: Sendable {
    private struct Key: Hashable {
        let upstream: String
        let server: SocketAddress
    }

    private let down = NIOLockedValueBox<Set<Key>>([])
    /// How many servers are down, kept under the lock of `down`: with none down (the usual state) a new
    /// connection's balancing reads one atomic instead of taking a lock both relay threads share.
    private let downCount = Atomic<Int>(0)
    private let lastAllDownWarning = NIOLockedValueBox<[String: NIODeadline]>([:])

    public init() {}

    public func markDown(upstream: String, server: SocketAddress, _ isDown: Bool) {
        let key = Key(upstream: upstream, server: server)
        down.withLockedValue { set in
            if isDown { set.insert(key) } else { set.remove(key) }
            downCount.store(set.count, ordering: .releasing)
        }
    }

    public func isDown(upstream: String, server: SocketAddress) -> Bool {
        guard downCount.load(ordering: .acquiring) > 0 else { return false }
        return down.withLockedValue { $0.contains(Key(upstream: upstream, server: server)) }
    }

    /// Forgets servers that are no longer checked.
    public func retain(_ keep: [(upstream: String, server: SocketAddress)]) {
        let keys = Set(keep.map { Key(upstream: $0.upstream, server: $0.server) })
        down.withLockedValue { set in
            set.formIntersection(keys)
            downCount.store(set.count, ordering: .releasing)
        }
    }

    /// True at most once every 10 s per upstream, for the "all servers down" warning.
    func shouldWarnAllDown(_ upstream: String) -> Bool {
        let now = NIODeadline.now()
        return lastAllDownWarning.withLockedValue { last in
            if let previous = last[upstream], now - previous < .seconds(10) { return false }
            last[upstream] = now
            return true
        }
    }
}
