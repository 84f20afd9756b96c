import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Which upstream servers active checks have marked down, and which a failed connect made new connections
/// skip for a while (`fail_timeout`); read by balancing, written by the checker and the relays. Keyed by
/// upstream name and address, so it survives reloads.
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
    /// Servers skipped after a failed connect, until when; counted in `failingCount` as `down` is.
    private let failing = NIOLockedValueBox<[Key: NIODeadline]>([:])
    private let failingCount = Atomic<Int>(0)

    public init() {}

    public func markDown(upstream: String, server: SocketAddress, _ isDown: Bool) {
        let key = Key(upstream: upstream, server: server)
        down.withLockedValue { set in
            if isDown { set.insert(key) } else { set.remove(key) }
            downCount.store(set.count, ordering: .releasing)
        }
    }

    public func isDown(upstream: String, server: SocketAddress) -> Bool {
        // The usual state, nothing down or skipped, costs two atomic loads per server and no key.
        let checked = downCount.load(ordering: .acquiring) > 0, skipping = failingCount.load(ordering: .acquiring) > 0
        guard checked || skipping else { return false }
        let key = Key(upstream: upstream, server: server)
        if checked, down.withLockedValue({ $0.contains(key) }) { return true }
        guard skipping else { return false }
        return failing.withLockedValue { failing in
            guard let until = failing[key] else { return false }
            if NIODeadline.now() < until { return true }
            failing[key] = nil
            failingCount.store(failing.count, ordering: .releasing)
            return false
        }
    }

    /// Skips `server` until `until`; true when it was not being skipped already.
    func noteFailure(upstream: String, server: SocketAddress, until: NIODeadline) -> Bool {
        failing.withLockedValue { failing in
            let key = Key(upstream: upstream, server: server)
            let fresh = failing[key].map { NIODeadline.now() >= $0 } ?? true
            failing[key] = until
            failingCount.store(failing.count, ordering: .releasing)
            return fresh
        }
    }

    /// After a reload: skipping ends for upstreams gone or with fail_timeout off, and lasts at most the new
    /// fail_timeout from now.
    public func reviseFailures(_ failTimeouts: [String: TimeAmount]) {
        guard failingCount.load(ordering: .acquiring) > 0 else { return }
        let now = NIODeadline.now()
        failing.withLockedValue { failing in
            for (key, until) in failing {
                guard let timeout = failTimeouts[key.upstream], timeout > .zero else {
                    failing[key] = nil
                    continue
                }
                failing[key] = min(until, now + timeout)
            }
            failingCount.store(failing.count, ordering: .releasing)
        }
    }

    /// Ends the skipping of `server` (a connect to it succeeded).
    func clearFailure(upstream: String, server: SocketAddress) {
        guard failingCount.load(ordering: .acquiring) > 0 else { return }
        failing.withLockedValue { failing in
            guard failing.removeValue(forKey: Key(upstream: upstream, server: server)) != nil else { return }
            failingCount.store(failing.count, ordering: .releasing)
        }
    }

    /// Whether `server` is being skipped after a failed connect (for /status).
    public func isFailing(upstream: String, server: SocketAddress) -> Bool {
        guard failingCount.load(ordering: .acquiring) > 0 else { return false }
        return failing.withLockedValue { $0[Key(upstream: upstream, server: server)].map { NIODeadline.now() < $0 } ?? false }
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
