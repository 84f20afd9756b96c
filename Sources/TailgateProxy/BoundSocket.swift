import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One listening socket: a bind address and the listener whose policy its connections follow.
///
/// Kept across reloads while its address stays in the configuration, so accepting never pauses.
public final class BoundSocket: Sendable {
    public let address: SocketAddress
    /// The address actually bound (differs from `address` when port 0 was asked for).
    public let boundAddress: SocketAddress
    /// The bound address when it names one interface address (not 0.0.0.0 or ::), so that it is every
    /// accepted connection's local address.
    let specificAddress: SocketAddress?
    private let listenerBox: NIOLockedValueBox<ListenerRuntime>
    /// The listening descriptor and the relay whose threads accept on it; nil once closed.
    private let open: NIOLockedValueBox<(descriptor: CInt, relay: SpliceRelayEngine)?>
    let connections = ConnectionRegistry()
    let logger: Logger
    /// The logger's handler when it writes connection lines itself (looked up once, not per connection).
    let lineWriter: (any ConnectionLineWriter)?

    private init(address: SocketAddress, bound: SocketAddress, descriptor: CInt, relay: SpliceRelayEngine, listener: ListenerRuntime, logger: Logger) {
        self.address = address
        self.boundAddress = bound
        if let ip = bound.ipAddress, ip != "0.0.0.0", ip != "::" {
            self.specificAddress = bound
        } else {
            self.specificAddress = nil
        }
        self.open = NIOLockedValueBox((descriptor, relay))
        self.listenerBox = NIOLockedValueBox(listener)
        self.logger = logger
        self.lineWriter = logger.handler as? any ConnectionLineWriter
    }

    /// The listener that new connections on this socket belong to.
    public var listener: ListenerRuntime {
        get { listenerBox.withLockedValue { $0 } }
        set { listenerBox.withLockedValue { $0 = newValue } }
    }

    /// Opens the socket and lets `relay`'s threads accept, admit and relay on it. Throws the bind error
    /// (address in use, permission denied) as is.
    ///
    /// `sharing`: set SO_REUSEPORT before binding, so that the bind succeeds beside a socket of this process
    /// that overlaps it and has `allowSharing()` (a reload from 127.0.0.1:443 to 0.0.0.0:443).
    public static func bind(
        _ address: SocketAddress, listener: ListenerRuntime, relay: SpliceRelayEngine, logger: Logger, sharing: Bool = false
    ) throws -> BoundSocket {
        let (descriptor, bound) = try ListeningSocket.open(address, sharing: sharing)
        let socket = BoundSocket(address: address, bound: bound, descriptor: descriptor, relay: relay, listener: listener, logger: logger)
        relay.listen(descriptor, for: socket)
        return socket
    }

    /// Serves `descriptor`, a listening socket passed in by systemd's file descriptor store or the tailgate
    /// this process took over from (`InheritedSockets`), instead of binding anew: the connections waiting in
    /// its backlog are accepted, none is refused.
    public static func adopt(
        _ descriptor: CInt, address: SocketAddress, listener: ListenerRuntime, relay: SpliceRelayEngine, logger: Logger
    ) -> BoundSocket {
        let bound = (try? ListeningSocket.localAddress(of: descriptor)) ?? address
        let socket = BoundSocket(address: address, bound: bound, descriptor: descriptor, relay: relay, listener: listener, logger: logger)
        relay.listen(descriptor, for: socket)
        return socket
    }

    /// The listening descriptor while the socket is open (for the file descriptor store and a hand-over).
    public var descriptor: CInt? {
        open.withLockedValue { $0?.descriptor }
    }

    /// Lets a socket opened with `sharing` bind beside this one although their addresses overlap (Linux
    /// allows it when both have SO_REUSEPORT and the same owner). Used only on a socket about to close, for
    /// the moment a reload holds both. A second agent binds without SO_REUSEPORT and is still refused the
    /// port; only a process of the same user that sets SO_REUSEPORT itself could join the port of a socket
    /// opened this way (the kernel remembers the port's owner), as it always can with HAProxy, which sets
    /// SO_REUSEPORT on every listener.
    public func allowSharing() throws {
        if let descriptor = open.withLockedValue({ $0?.descriptor }) {
            try ListeningSocket.set(descriptor, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT")
        }
    }

    /// Takes SO_REUSEPORT off again once the overlapping socket has closed (or the reload was rolled back),
    /// so that a socket of another address on this port is refused again.
    public func forbidSharing() {
        if let descriptor = open.withLockedValue({ $0?.descriptor }) {
            var zero: CInt = 0
            _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &zero, socklen_t(MemoryLayout<CInt>.size))
        }
    }

    /// Stops accepting; connections already accepted go on.
    public func close() async {
        guard let (descriptor, relay) = open.withLockedValue({ box in defer { box = nil }; return box }) else { return }
        await relay.stopListening(descriptor)
        Glibc.close(descriptor)
    }

    /// Connections accepted on this socket that are still open.
    public var openConnections: Int { connections.count }

    /// Waits until the connections accepted here have finished, or the deadline `drainAgain(until:)` set;
    /// then closes what is left. Returns how many had to be closed. A reprieve (the bind is configured
    /// again) lifts the deadline until `drainAgain` sets a new one.
    @discardableResult
    public func drain() async -> Int {
        while connections.count > 0, drainDeadline.withLockedValue({ $0.map { ContinuousClock.now < $0 } ?? true }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = connections.count
        if left > 0 { connections.closeAll() }
        return left
    }

    /// Lifts the drain deadline of a closed socket whose address a reload configured again.
    public func reprieve() {
        drainDeadline.withLockedValue { $0 = nil }
    }

    /// Sets the drain deadline: when the socket is removed, and when a reprieved one is removed once more.
    public func drainAgain(until deadline: ContinuousClock.Instant) {
        drainDeadline.withLockedValue { $0 = deadline }
    }

    /// Whether the socket is draining without a deadline.
    public var isReprieved: Bool {
        drainDeadline.withLockedValue { $0 == nil }
    }
    /// When a draining socket closes what is left; nil while reprieved.
    private let drainDeadline = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    /// Closes every connection accepted here at once.
    public func closeConnections() {
        connections.closeAll()
    }

    /// Takes a connection slot, or counts the refusal (and warns, at most once a second) when the listener is full.
    func admitOrRefuse(listener: ListenerRuntime, policy: ListenerPolicy) -> Bool {
        guard let refusal = listener.admit(limit: policy.maxConnections) else { return true }
        listener.countRefusedOverLimit()
        listener.metrics.overLimit(listener: listener.name)
        if listener.shouldWarnOverLimit() {
            switch refusal {
            case .listenerFull:
                logger.warning("listener is at max_connections; closing new connections", metadata: [
                    "listener": .string(listener.name), "max_connections": .stringConvertible(policy.maxConnections),
                    "rejected_so_far": .stringConvertible(listener.refusedOverLimitCount),
                ])
            case .processFull:
                logger.warning("the agent is at [global] max_connections; closing new connections", metadata: [
                    "listener": .string(listener.name), "max_connections": .stringConvertible(listener.budget.limit),
                    "rejected_so_far": .stringConvertible(listener.budget.refusedCount),
                ])
            }
        }
        return false
    }
}
