import NIOCore
import Synchronization
import TailgateConfig

/// Connections open and new connections per window for each client source of one listener
/// (`max_connections_per_source`, `connection_rate_per_source`), in a table of fixed size: a flood of a
/// million distinct sources costs no more memory than one source does.
///
/// The table is open-addressed in groups of 16 slots (a source lives in the group its hash picks). A new
/// source takes a free slot of its group, or else the slot of the source in that group that has no
/// connection open and was seen least recently; a source with connections open is never evicted, so what
/// `release` gives back is always found. The capacity is four times the listener's `max_connections`
/// (at least 4,096 slots), so its open connections can fill at most a quarter of it; should a group still
/// be full of sources with open connections, the newcomer is let in untracked (and counted).
/// One lock, held for a lookup in one group (a few hundred nanoseconds at most).
final class SourceTracker: Sendable {
    /// What `admit` decided.
    enum Verdict: Equatable {
        /// Counted; give it back with `release(key)` when the connection ends.
        case admitted(SourceKey)
        /// Over `max_connections_per_source`.
        case overConnections(SourceKey, open: Int)
        /// Over `connection_rate_per_source`.
        case overRate(SourceKey)
        /// Let in without counting: the table had no room (see above).
        case untracked
    }

    struct Entry {
        var open: Int32 = 0
        /// Attempts in the current window and in the one before it (the rate is the sliding-window
        /// estimate: the previous window's count weighted by how much of it still overlaps, plus this one's).
        var current: UInt32 = 0
        var previous: UInt32 = 0
        /// Uptime nanoseconds at which the current window began; also how recently the source was seen.
        var windowStart: Int64 = 0
        /// When a refusal of this source was last logged.
        var lastWarned: Int64 = .min
    }

    struct Table {
        var sources: SourceSlots<Entry>
        var inUse = 0
        var evictions = 0
        var untracked = 0
    }

    static let groupSize = SourceSlots<Entry>.groupSize
    /// How often at most one source's refusals are logged.
    static let warningInterval: Int64 = 60_000_000_000

    private let table: Mutex<Table>

    /// A table of `capacity` slots (rounded up to a power of two, at least one group).
    init(capacity: Int) {
        table = Mutex(Table(sources: SourceSlots(capacity: capacity, empty: Entry())))
    }

    /// The capacity a listener with `maxConnections` gets.
    static func capacity(forListenerLimit maxConnections: Int) -> Int {
        min(1 << 22, max(4_096, maxConnections * 4))
    }

    var capacity: Int { table.withLock { $0.sources.capacity } }

    /// Sources in the table, sources evicted to make room, connections let in untracked.
    var statistics: (sources: Int, evictions: Int, untracked: Int) {
        table.withLock { ($0.inUse, $0.evictions, $0.untracked) }
    }

    /// Counts a new connection from `key`, unless it is over a limit. Attempts over the rate count too, so a
    /// source that keeps trying stays refused until it slows down.
    func admit(_ key: SourceKey, limits: SourceLimits, now: Int64) -> Verdict {
        table.withLock { table -> Verdict in
            // A source with connections open never gives way: what `release` gives back is always found.
            guard let (index, how) = table.sources.claim(
                key, fresh: Entry(windowStart: now), mayGiveWay: { $0.open == 0 }, age: { $0.windowStart }
            ) else {
                table.untracked += 1
                return .untracked
            }
            switch how {
            case .found: break
            case .free: table.inUse += 1
            case .evicted: table.evictions += 1
            }
            return Self.count(key, in: &table.sources[index], limits: limits, now: now)
        }
    }

    /// The rate and connection checks for one source's entry.
    private static func count(_ key: SourceKey, in entry: inout Entry, limits: SourceLimits, now: Int64) -> Verdict {
        if let rate = limits.rate {
            let window = rate.window.wholeMilliseconds * 1_000_000
            let elapsed = now - entry.windowStart
            if elapsed >= 2 * window {
                entry.previous = 0
                entry.current = 0
                entry.windowStart = now
            } else if elapsed >= window {
                entry.previous = entry.current
                entry.current = 0
                entry.windowStart += window
            }
            let overlap = Double(window - (now - entry.windowStart)) / Double(window)
            let estimate = Double(entry.previous) * max(0, overlap) + Double(entry.current)
            if entry.current < .max { entry.current += 1 }
            if estimate + 1 > Double(rate.count) { return .overRate(key) }
        } else {
            entry.windowStart = now
        }
        if let most = limits.maxConnections, Int(entry.open) >= most {
            return .overConnections(key, open: Int(entry.open))
        }
        entry.open += 1
        return .admitted(key)
    }

    /// A connection counted by `admit` ended.
    func release(_ key: SourceKey) {
        table.withLock { table in
            guard let index = table.sources.find(key), table.sources[index].open > 0 else { return }
            table.sources[index].open -= 1
        }
    }

    /// Whether a refusal of `key` should be logged now (at most once per source per minute).
    func shouldWarn(_ key: SourceKey, now: Int64) -> Bool {
        table.withLock { table in
            guard let index = table.sources.find(key) else { return false }
            let last = table.sources[index].lastWarned
            guard last == .min || now - last >= Self.warningInterval else { return false }
            table.sources[index].lastWarned = now
            return true
        }
    }

    /// Connections open from `key` now (0 when it is not in the table).
    func openConnections(_ key: SourceKey) -> Int {
        table.withLock { table in table.sources.find(key).map { Int(table.sources[$0].open) } ?? 0 }
    }
}
