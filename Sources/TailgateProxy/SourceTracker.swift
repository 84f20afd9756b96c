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
        var high: UInt64 = 0
        var low: UInt64 = 0
        var used = false
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
        var slots: [Entry]
        var mask: Int
        var inUse = 0
        var evictions = 0
        var untracked = 0
    }

    static let groupSize = 16
    /// How often at most one source's refusals are logged.
    static let warningInterval: Int64 = 60_000_000_000

    private let table: Mutex<Table>
    private let seed: UInt64

    /// A table of `capacity` slots (rounded up to a power of two, at least one group).
    init(capacity: Int) {
        var size = Self.groupSize
        while size < capacity { size <<= 1 }
        table = Mutex(Table(slots: Array(repeating: Entry(), count: size), mask: size - 1))
        seed = UInt64.random(in: 1...UInt64.max)
    }

    /// The capacity a listener with `maxConnections` gets.
    static func capacity(forListenerLimit maxConnections: Int) -> Int {
        min(1 << 22, max(4_096, maxConnections * 4))
    }

    var capacity: Int { table.withLock { $0.slots.count } }

    /// Sources in the table, sources evicted to make room, connections let in untracked.
    var statistics: (sources: Int, evictions: Int, untracked: Int) {
        table.withLock { ($0.inUse, $0.evictions, $0.untracked) }
    }

    /// Counts a new connection from `key`, unless it is over a limit. Attempts over the rate count too, so a
    /// source that keeps trying stays refused until it slows down.
    func admit(_ key: SourceKey, limits: SourceLimits, now: Int64) -> Verdict {
        let start = Int(truncatingIfNeeded: hash(key))
        return table.withLock { table -> Verdict in
            guard let index = Self.slot(for: key, from: start, in: &table, now: now) else {
                table.untracked += 1
                return .untracked
            }
            return Self.count(key, in: &table.slots[index], limits: limits, now: now)
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
        let start = Int(truncatingIfNeeded: hash(key))
        table.withLock { table in
            let mask = table.mask
            for step in 0..<Self.groupSize {
                let index = (start &+ step) & mask
                if table.slots[index].used, table.slots[index].high == key.high, table.slots[index].low == key.low {
                    if table.slots[index].open > 0 { table.slots[index].open -= 1 }
                    return
                }
            }
        }
    }

    /// Whether a refusal of `key` should be logged now (at most once per source per minute).
    func shouldWarn(_ key: SourceKey, now: Int64) -> Bool {
        let start = Int(truncatingIfNeeded: hash(key))
        return table.withLock { table in
            let mask = table.mask
            for step in 0..<Self.groupSize {
                let index = (start &+ step) & mask
                if table.slots[index].used, table.slots[index].high == key.high, table.slots[index].low == key.low {
                    guard table.slots[index].lastWarned == .min || now - table.slots[index].lastWarned >= Self.warningInterval else { return false }
                    table.slots[index].lastWarned = now
                    return true
                }
            }
            return false
        }
    }

    /// Connections open from `key` now (0 when it is not in the table).
    func openConnections(_ key: SourceKey) -> Int {
        let start = Int(truncatingIfNeeded: hash(key))
        return table.withLock { table in
            for step in 0..<Self.groupSize {
                let entry = table.slots[(start &+ step) & table.mask]
                if entry.used, entry.high == key.high, entry.low == key.low { return Int(entry.open) }
            }
            return 0
        }
    }

    /// The slot of `key` in its group: found, or a free one, or the least recently seen source without open
    /// connections (evicted); nil when every slot of the group holds a source with connections open.
    private static func slot(for key: SourceKey, from start: Int, in table: inout Table, now: Int64) -> Int? {
        let mask = table.mask
        var free: Int?
        var oldest: Int?
        for step in 0..<groupSize {
            let index = (start &+ step) & mask
            let entry = table.slots[index]
            if !entry.used {
                if free == nil { free = index }
                continue
            }
            if entry.high == key.high, entry.low == key.low { return index }
            if entry.open == 0, oldest.map({ entry.windowStart < table.slots[$0].windowStart }) ?? true { oldest = index }
        }
        guard let index = free ?? oldest else { return nil }
        if free == nil {
            table.evictions += 1
        } else {
            table.inUse += 1
        }
        table.slots[index] = Entry(high: key.high, low: key.low, used: true, windowStart: now)
        return index
    }

    /// A keyed mix of the source's bits (the seed is random per process, so that nobody can pick addresses
    /// that all fall in one group).
    private func hash(_ key: SourceKey) -> UInt64 {
        var value = key.high ^ (key.low &* 0x9E37_79B9_7F4A_7C15) ^ seed
        value ^= value >> 33
        value &*= 0xFF51_AFD7_ED55_8CCD
        value ^= value >> 33
        value &*= 0xC4CE_B9FE_1A85_EC53
        value ^= value >> 33
        return value
    }
}
