import CTailgateLinux
import Glibc
import NIOConcurrencyHelpers
import Synchronization
import TailgateConfig
import TailgateSystem

/// Where the relay meets the ban sets. The relay threads hand it ban requests (a listener's `ban` rule
/// tripped), which a thread of the agent takes and writes to the kernel: a relay thread never waits on
/// netlink. And it holds the bans as last read, so that a client behind a trusted PROXY hop is refused
/// after its header names it: the kernel cannot drop what arrives from the hop's address.
public final class BanBoard: Sendable {
    public struct Request: Sendable, Equatable {
        public let source: SourceKey
        public let duration: Duration
        public let comment: String
    }

    private let queue = Mutex<[Request]>([])
    private let banned = NIOLockedValueBox(AddressSet())
    private let isEmpty = Atomic<Bool>(true)
    /// Written when a request is queued; the taker blocks reading it.
    private let wakeup: CInt = tailgate_eventfd_blocking()
    /// Requests waiting at most (a flood of offenders cannot grow memory without bound).
    static let queueLimit = 4_096

    public init() {}

    /// Queues a ban; dropped when the queue is full (the next offense asks again).
    func request(_ request: Request) {
        let queued = queue.withLock { queue -> Bool in
            guard queue.count < Self.queueLimit, !queue.contains(where: { $0.source == request.source }) else { return false }
            queue.append(request)
            return true
        }
        if queued {
            var one: UInt64 = 1
            _ = write(wakeup, &one, 8)
        }
    }

    /// Waits up to `milliseconds` for requests, then takes what is queued (the agent's ban thread).
    public func takeRequests(waitingAtMost milliseconds: Int32) -> [Request] {
        var taken = queue.withLock { queue -> [Request] in
            defer { queue.removeAll() }
            return queue
        }
        guard taken.isEmpty else { return taken }
        var descriptor = pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, milliseconds) > 0 {
            var count: UInt64 = 0
            _ = read(wakeup, &count, 8)
        }
        taken = queue.withLock { queue -> [Request] in
            defer { queue.removeAll() }
            return queue
        }
        return taken
    }

    /// The bans as the kernel last said (the agent refreshes it after each change and every few seconds).
    public func publish(_ bans: AddressSet) {
        banned.withLockedValue { $0 = bans }
        isEmpty.store(bans.isEmpty, ordering: .releasing)
    }

    /// Whether `address` is banned (one atomic load while nobody is).
    func isBanned(_ address: IPAddress) -> Bool {
        guard !isEmpty.load(ordering: .acquiring) else { return false }
        return banned.withLockedValue { $0.contains(address) }
    }
}

/// Offenses per source for one listener's `ban` rule, in a table of fixed size (16,384 slots in groups of
/// 16, the least recently seen source in a group giving way), as `SourceTracker` counts connections. A
/// source's earlier bans are remembered while it stays in the table, so a repeat offender's ban doubles.
final class OffenseTracker: Sendable {
    struct Entry {
        var count: UInt32 = 0
        var windowStart: Int64 = 0
        var lastSeen: Int64 = 0
        var bans: UInt8 = 0
    }

    private let sources: Mutex<SourceSlots<Entry>>

    init(capacity: Int = 16_384) {
        sources = Mutex(SourceSlots(capacity: capacity, empty: Entry()))
    }

    /// Counts an offense of `key`; returns how long to ban it when this one trips the rule (and counts the ban).
    func offend(_ key: SourceKey, rule: BanRule, now: Int64) -> (length: Duration, count: Int)? {
        sources.withLock { sources -> (Duration, Int)? in
            // Any source may give way, the least recently seen first: forgetting one costs only its count.
            guard let (index, _) = sources.claim(key, fresh: Entry(windowStart: now), mayGiveWay: { _ in true }, age: { $0.lastSeen }) else {
                return nil
            }
            let window = rule.within.wholeMilliseconds * 1_000_000
            if now - sources[index].windowStart >= window {
                sources[index].windowStart = now
                sources[index].count = 0
            }
            sources[index].lastSeen = now
            sources[index].count += 1
            guard sources[index].count >= UInt32(rule.after) else { return nil }
            let count = Int(sources[index].count)
            let length = rule.length(afterEarlierBans: Int(sources[index].bans))
            sources[index].bans &+= sources[index].bans < .max ? 1 : 0
            sources[index].count = 0
            sources[index].windowStart = now
            return (length, count)
        }
    }
}
