import Glibc
import NIOCore
import Synchronization
import TailgateConfig

/// How a listener's connections ended since start, by outcome, and the last few that ended badly: what the
/// status page shows without reading the Prometheus registry back.
public final class ListenerTally: Sendable {
    /// A connection that ended with an outcome other than `closed` or `redirected`, with the fields its log
    /// line showed (and no more).
    public struct RecentEnd: Sendable {
        /// Seconds since the epoch.
        public var time: Int64
        public var client: String
        public var serverName: String?
        public var outcome: ConnectionOutcome
        public var reason: String?
    }

    /// The endings kept per listener.
    public static let recentLimit = 8

    private final class Cell: Sendable {
        let value = Atomic<Int>(0)
    }

    /// The outcomes in the order of `cells` (`allCases` builds a new array at each use; this runs per connection).
    private static let outcomeOrder = ConnectionOutcome.allCases
    private let cells: [Cell] = ConnectionOutcome.allCases.map { _ in Cell() }
    private let recent = Mutex<(entries: [RecentEnd], next: Int)>(([], 0))

    /// Counts one ending; `logged` connections that did not end well are also kept among the recent ones
    /// (only those have their client's address formatted).
    func ended(_ outcome: ConnectionOutcome, logged: Bool, client: SocketAddress?, serverName: String?, reason: String?) {
        if let index = Self.outcomeOrder.firstIndex(of: outcome) {
            cells[index].value.add(1, ordering: .relaxed)
        }
        guard logged, outcome != .closed, outcome != .redirected else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        // Each field as long as the log line would show it: a client's SNI is at most a host name.
        let entry = RecentEnd(time: Int64(now.tv_sec), client: client?.endpointDescription ?? "-", serverName: serverName.map { String($0.prefix(255)) }, outcome: outcome, reason: reason)
        recent.withLock { ring in
            if ring.entries.count < Self.recentLimit {
                ring.entries.append(entry)
            } else {
                ring.entries[ring.next] = entry
            }
            ring.next = (ring.next + 1) % Self.recentLimit
        }
    }

    /// Connections that ended with each outcome since start (outcomes with none left out).
    public var outcomes: [ConnectionOutcome: Int] {
        var result: [ConnectionOutcome: Int] = [:]
        for (index, outcome) in Self.outcomeOrder.enumerated() {
            let count = cells[index].value.load(ordering: .relaxed)
            if count > 0 { result[outcome] = count }
        }
        return result
    }

    /// The last few bad endings, newest first.
    public var recentEnds: [RecentEnd] {
        recent.withLock { ring in
            ring.entries.count < Self.recentLimit
                ? ring.entries.reversed()
                : Array(ring.entries[..<ring.next].reversed()) + Array(ring.entries[ring.next...].reversed())
        }
    }
}
