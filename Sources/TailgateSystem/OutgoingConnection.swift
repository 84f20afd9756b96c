import CTailgateLinux
import Glibc
import NIOCore

/// The one way tailgate connects out (the relay to upstream servers, the active checks, `tailgate status`):
/// a non-blocking TCP socket with TCP_NODELAY, its connect started at once and finished by the caller's
/// event loop, or waited for with a deadline.
public enum OutgoingConnection {
    /// Opens a socket to `address` and starts the connect. Returns the descriptor and whether the connect
    /// is still in progress (finish it when the socket becomes writable: `pendingError`); throws the
    /// `socket` or `connect` failure (ECONNREFUSED on loopback comes at once), with nothing left open.
    public static func start(to address: SocketAddress) throws(SystemCallError) -> (descriptor: CInt, inProgress: Bool) {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let descriptor = socket(address.protocol.rawValue, type, 0)
        guard descriptor >= 0 else { throw SystemCallError("socket") }
        var one: CInt = 1
        _ = setsockopt(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        let result = address.withSockAddr { pointer, length in tailgate_connect(descriptor, pointer, socklen_t(length)) }
        if result == 0 { return (descriptor, false) }
        // A non-blocking connect interrupted by a signal goes on in the background, as one in progress.
        let error = errno
        if error == EINPROGRESS || error == EINTR { return (descriptor, true) }
        Glibc.close(descriptor)
        throw SystemCallError("connect", errno: error)
    }

    /// The socket's pending error (SO_ERROR; reading it clears it): 0 when a finished connect succeeded.
    public static func pendingError(_ descriptor: CInt) -> CInt {
        var error: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
        return error
    }

    /// Connects to `address`, waiting at most until `deadline`; returns the connected non-blocking socket.
    /// A deadline that passes fails as `connect` with ETIMEDOUT.
    public static func connect(to address: SocketAddress, deadline: NIODeadline) throws(SystemCallError) -> CInt {
        let (descriptor, inProgress) = try start(to: address)
        guard inProgress else { return descriptor }
        do throws(SystemCallError) {
            try wait(descriptor, for: Int16(POLLOUT), until: deadline)
        } catch {
            Glibc.close(descriptor)
            throw SystemCallError("connect", errno: error.errno)
        }
        let error = pendingError(descriptor)
        guard error == 0 else {
            Glibc.close(descriptor)
            throw SystemCallError("connect", errno: error)
        }
        return descriptor
    }

    /// Waits until `descriptor` is ready for `events` (or has an error or hang-up to report, which the next
    /// call on it returns), at most until `deadline`; throws `poll` with ETIMEDOUT when it passes.
    public static func wait(_ descriptor: CInt, for events: Int16, until deadline: NIODeadline) throws(SystemCallError) {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        while true {
            guard let milliseconds = pollMilliseconds(until: deadline) else { throw SystemCallError("poll", errno: ETIMEDOUT) }
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return }
            if ready < 0, errno != EINTR { throw SystemCallError("poll") }
        }
    }

    /// poll's timeout for a wait until `deadline`: the time left, rounded up to a millisecond (rounded down,
    /// the wait would end short of the deadline and the loop around it would spin); nil once it has passed.
    static func pollMilliseconds(until deadline: NIODeadline, now: NIODeadline = .now()) -> CInt? {
        let left = (deadline - now).nanoseconds
        guard left > 0 else { return nil }
        return CInt(clamping: (left + 999_999) / 1_000_000)
    }
}
