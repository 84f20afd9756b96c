import CTailgateLinux
import Glibc

/// What epoll reports, or is asked to watch, for one descriptor (epoll_event's `events`).
public struct EpollEvents: OptionSet, Sendable {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public static let input = EpollEvents(rawValue: UInt32(TAILGATE_EPOLLIN))
    public static let output = EpollEvents(rawValue: UInt32(TAILGATE_EPOLLOUT))
    public static let error = EpollEvents(rawValue: UInt32(TAILGATE_EPOLLERR))
    public static let hangUp = EpollEvents(rawValue: UInt32(TAILGATE_EPOLLHUP))
    /// The peer shut down its sending side (EPOLLRDHUP): its FIN arrived.
    public static let peerClosed = EpollEvents(rawValue: UInt32(TAILGATE_EPOLLRDHUP))
    /// Reported once per change of readiness rather than while it lasts (EPOLLET).
    public static let edgeTriggered = EpollEvents(rawValue: TAILGATE_EPOLLET)
    /// One of the waiters on a shared descriptor is woken, not all (EPOLLEXCLUSIVE).
    public static let exclusive = EpollEvents(rawValue: UInt32(truncatingIfNeeded: TAILGATE_EPOLLEXCLUSIVE))
}

/// One epoll instance and the calls on it, with named operations (a thin layer: nothing is hidden but the
/// struct layout of epoll_event, which Swift cannot import packed).
public struct Epoll: Sendable {
    public let descriptor: CInt

    public init() throws(SystemCallError) {
        let descriptor = tailgate_epoll_create()
        guard descriptor >= 0 else { throw SystemCallError("epoll_create1") }
        self.descriptor = descriptor
    }

    /// Starts watching `target` for `events`; `token` comes back with each of its events.
    public func add(_ target: CInt, _ events: EpollEvents, token: UInt64) throws(SystemCallError) {
        guard tailgate_epoll_control(descriptor, CInt(TAILGATE_EPOLL_CTL_ADD), target, events.rawValue, token) == 0 else {
            throw SystemCallError("epoll_ctl")
        }
    }

    /// Changes what `target` is watched for.
    public func modify(_ target: CInt, _ events: EpollEvents, token: UInt64) throws(SystemCallError) {
        guard tailgate_epoll_control(descriptor, CInt(TAILGATE_EPOLL_CTL_MOD), target, events.rawValue, token) == 0 else {
            throw SystemCallError("epoll_ctl")
        }
    }

    /// Stops watching `target`. Closing a descriptor also removes it; this is for one that stays open.
    public func remove(_ target: CInt) {
        _ = tailgate_epoll_control(descriptor, CInt(TAILGATE_EPOLL_CTL_DEL), target, 0, 0)
    }

    /// Waits up to `timeoutMilliseconds` (-1: until an event) and fills `events` and `tokens` in step;
    /// returns how many there are (0 on timeout or an interrupted wait).
    public func wait(events: inout [UInt32], tokens: inout [UInt64], timeoutMilliseconds: CInt) throws(SystemCallError) -> Int {
        let count = tailgate_epoll_wait(descriptor, &events, &tokens, CInt(min(events.count, tokens.count)), timeoutMilliseconds)
        if count >= 0 { return Int(count) }
        if errno == EINTR { return 0 }
        throw SystemCallError("epoll_wait")
    }

    public func close() {
        Glibc.close(descriptor)
    }
}
