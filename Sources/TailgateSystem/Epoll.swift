import CTailgateLinux
import Glibc

/// What epoll reports, or is asked to watch, for one descriptor (epoll_event's `events`). Frozen and
/// inlinable: the relay tests these bits on every event, so they must fold to constants in its module.
@frozen
public struct EpollEvents: OptionSet, Sendable {
    public let rawValue: UInt32

    @inlinable
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    @inlinable public static var input: EpollEvents { EpollEvents(rawValue: 0x001) }  // EPOLLIN
    @inlinable public static var output: EpollEvents { EpollEvents(rawValue: 0x004) }  // EPOLLOUT
    @inlinable public static var error: EpollEvents { EpollEvents(rawValue: 0x008) }  // EPOLLERR
    @inlinable public static var hangUp: EpollEvents { EpollEvents(rawValue: 0x010) }  // EPOLLHUP
    /// The peer shut down its sending side (EPOLLRDHUP): its FIN arrived.
    @inlinable public static var peerClosed: EpollEvents { EpollEvents(rawValue: 0x2000) }
    /// Reported once per change of readiness rather than while it lasts (EPOLLET).
    @inlinable public static var edgeTriggered: EpollEvents { EpollEvents(rawValue: 0x8000_0000) }
    /// One of the waiters on a shared descriptor is woken, not all (EPOLLEXCLUSIVE).
    @inlinable public static var exclusive: EpollEvents { EpollEvents(rawValue: 0x1000_0000) }

    /// Something for a read to find: input, the peer's FIN, or a hang-up or error that the read reports.
    @inlinable public static var readable: EpollEvents { EpollEvents(rawValue: input.rawValue | peerClosed.rawValue | hangUp.rawValue | error.rawValue) }
    /// Room for a write, or a hang-up or error that the write reports.
    @inlinable public static var writable: EpollEvents { EpollEvents(rawValue: output.rawValue | hangUp.rawValue | error.rawValue) }
    /// The peer sends nothing more: its FIN, or the connection is gone.
    @inlinable public static var peerDone: EpollEvents { EpollEvents(rawValue: peerClosed.rawValue | hangUp.rawValue) }
    /// The connection failed or is gone (EPOLLHUP or EPOLLERR).
    @inlinable public static var failed: EpollEvents { EpollEvents(rawValue: hangUp.rawValue | error.rawValue) }
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
