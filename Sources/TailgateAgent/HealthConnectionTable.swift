import NIOCore
import Synchronization
import TailgateConfig

/// The health endpoint's open connections, so that a monitor always gets through.
///
/// A connection is *idle* while it has not sent a whole request head, and again once answered (while its
/// close lingers); it is *busy* while its answer is being made. Limits: `perSource` connections per source
/// (an IPv4 address, an IPv6 /64) and `limit` in all. A newcomer over either limit does not wait and is not
/// refused: the oldest idle connection of its source (over the per-source cap) or of anyone (over the
/// total) is closed to make room. Only when every connection that could give way is busy answering is the
/// newcomer closed. So a peer holding every slot open with idle connections loses the oldest one to each new
/// connection, its own or a monitor's, and a monitor's request, sent at once, is answered.
///
/// A connection evicted before it sent a whole head is not closed at once but set aside, unread, until its
/// head deadline closes it (up to `limit` of them): a peer that reopens every connection the moment it is
/// closed would otherwise spin the endpoint's loop, each reopened connection evicting the next.
final class HealthConnectionTable: Sendable {
    enum Phase {
        /// Waiting for its request head.
        case reading
        /// Its answer is being made.
        case busy
        /// Answered; its close lingers.
        case answered
    }

    private struct Entry {
        let channel: any Channel
        let source: SourceKey
        let serial: UInt64
        var phase: Phase
    }

    /// A connection's source: its IPv4 address, or the /64 of its IPv6 one (as a listener's per-source
    /// limits count by default).
    /// (IPv4-mapped IPv6 counts as IPv4; nil for an address that is not IP.)
    static func source(of address: SocketAddress?) -> SourceKey? {
        address.flatMap(IPAddress.init).map { SourceKey($0, ipv4Prefix: 32, ipv6Prefix: 64) }
    }

    /// A connection that gives way: closed now, or (waiting for its head) set aside unread.
    struct Eviction {
        let channel: any Channel
        let setAside: Bool
    }

    enum Admission {
        /// Admitted; evict these connections to make room.
        case admitted(evicting: [Eviction])
        /// Every connection that could give way is busy.
        case refused
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var perSource: [SourceKey: Int] = [:]
        /// Evicted connections still open, waiting for their head deadline.
        var setAside: Set<ObjectIdentifier> = []
        var serial: UInt64 = 0
        var evictions = 0
        var refusals = 0
    }

    let limit: Int
    let perSource: Int
    private let state = Mutex(State())

    init(limit: Int, perSource: Int) {
        self.limit = limit
        self.perSource = perSource
    }

    func admit(_ channel: any Channel, source: SourceKey) -> Admission {
        state.withLock { state in
            var evicting: [Eviction] = []
            func evictOldestIdle(of source: SourceKey?) -> Bool {
                // The oldest still waiting for its head first (it can be set aside unread); an answered one,
                // whose client may still be reading, only when none is.
                var oldest: (key: ObjectIdentifier, entry: Entry)?
                for (key, entry) in state.entries where entry.phase != .busy && (source == nil || entry.source == source) {
                    guard let current = oldest else {
                        oldest = (key, entry)
                        continue
                    }
                    let better = (entry.phase == .reading) != (current.entry.phase == .reading)
                        ? entry.phase == .reading : entry.serial < current.entry.serial
                    if better { oldest = (key, entry) }
                }
                guard let oldest else { return false }
                state.entries[oldest.key] = nil
                state.perSource[oldest.entry.source, default: 1] -= 1
                if state.perSource[oldest.entry.source] == 0 { state.perSource[oldest.entry.source] = nil }
                let setAside = oldest.entry.phase == .reading && state.setAside.count < limit
                if setAside { state.setAside.insert(oldest.key) }
                evicting.append(Eviction(channel: oldest.entry.channel, setAside: setAside))
                state.evictions += 1
                return true
            }
            if state.perSource[source, default: 0] >= perSource, !evictOldestIdle(of: source) {
                state.refusals += 1
                return .refused
            }
            if state.entries.count >= limit, !evictOldestIdle(of: nil) {
                state.refusals += 1
                return .refused
            }
            state.serial += 1
            state.entries[ObjectIdentifier(channel)] = Entry(channel: channel, source: source, serial: state.serial, phase: .reading)
            state.perSource[source, default: 0] += 1
            return .admitted(evicting: evicting)
        }
    }

    func mark(_ channel: any Channel, _ phase: Phase) {
        state.withLock { state in
            state.entries[ObjectIdentifier(channel)]?.phase = phase
        }
    }

    func remove(_ channel: any Channel) {
        state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: ObjectIdentifier(channel)) else {
                state.setAside.remove(ObjectIdentifier(channel))
                return
            }
            state.perSource[entry.source, default: 1] -= 1
            if state.perSource[entry.source] == 0 { state.perSource[entry.source] = nil }
        }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Connections closed or set aside to make room since start, and newcomers closed because every
    /// connection was busy.
    var counts: (evictions: Int, refusals: Int) { state.withLock { ($0.evictions, $0.refusals) } }
}
