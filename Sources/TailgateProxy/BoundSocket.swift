import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One listening socket: a bind address and the listener whose policy its connections follow.
///
/// Kept across reloads while its address stays in the configuration, so accepting never pauses.
public final class BoundSocket: Sendable {
    public let address: SocketAddress
    private let listenerBox: NIOLockedValueBox<ListenerRuntime>
    private let channelBox = NIOLockedValueBox<(any Channel)?>(nil)
    /// Set when the splice engine accepts on this socket itself (`relay = "splice"`).
    private let spliceBox = NIOLockedValueBox<(descriptor: CInt, engine: SpliceRelayEngine, bound: SocketAddress)?>(nil)
    let connections = ConnectionRegistry()
    let logger: Logger
    /// The logger's handler when it writes connection lines itself (looked up once, not per connection).
    let lineWriter: (any ConnectionLineWriter)?

    init(address: SocketAddress, listener: ListenerRuntime, logger: Logger) {
        self.address = address
        self.listenerBox = NIOLockedValueBox(listener)
        self.logger = logger
        self.lineWriter = logger.handler as? any ConnectionLineWriter
    }

    /// The listener that new connections on this socket belong to.
    public var listener: ListenerRuntime {
        get { listenerBox.withLockedValue { $0 } }
        set { listenerBox.withLockedValue { $0 = newValue } }
    }

    /// Opens the socket. Throws the bind error (address in use, permission denied) as is.
    ///
    /// With a splice engine in the listener's policy, the engine's threads accept, admit and relay on the
    /// socket themselves; otherwise SwiftNIO does (the `relay = "copy"` fallback). Which one serves a socket
    /// is fixed when it is opened.
    ///
    /// `sharing`: set SO_REUSEPORT before binding, so that the bind succeeds beside a socket of this process
    /// that overlaps it and has `allowSharing()` (a reload from 127.0.0.1:443 to 0.0.0.0:443).
    public static func bind(
        _ address: SocketAddress, listener: ListenerRuntime, group: any EventLoopGroup, logger: Logger, sharing: Bool = false
    ) async throws -> BoundSocket {
        let socket = BoundSocket(address: address, listener: listener, logger: logger)
        if let engine = listener.policy.splice {
            let (descriptor, bound) = try ListeningSocket.open(address, sharing: sharing)
            socket.spliceBox.withLockedValue { $0 = (descriptor, engine, bound) }
            if let ip = bound.ipAddress, ip != "0.0.0.0", ip != "::" {
                socket.specificBox.withLockedValue { $0 = bound }
            }
            engine.listen(descriptor, for: socket)
            return socket
        }
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1_024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // IP_FREEBIND: a tailnet address (100.x) may not exist yet when tailgate starts at boot,
            // before tailscaled; the socket binds now and accepts once the address appears.
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .ip, name: .init(rawValue: IP_FREEBIND)), value: 1)
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_REUSEPORT)), value: sharing ? 1 : 0)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try socket.initializeConnection(channel, logger: logger)
                }
            }
        if case .v6 = address {
            // Let "[::]:443" and "0.0.0.0:443" coexist, as nginx does.
            bootstrap = bootstrap.serverChannelOption(
                ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1
            )
        }
        let channel = try await bootstrap.bind(to: address).get()
        socket.channelBox.withLockedValue { $0 = channel }
        return socket
    }

    /// The address actually bound (differs from `address` when port 0 was asked for).
    public var boundAddress: SocketAddress? {
        if let splice = spliceBox.withLockedValue({ $0 }) { return splice.bound }
        return channelBox.withLockedValue { $0?.localAddress }
    }

    /// The bound address when it names one interface address (not 0.0.0.0 or ::), so that it is every
    /// accepted connection's local address.
    var specificAddress: SocketAddress? {
        specificBox.withLockedValue { $0 }
    }
    private let specificBox = NIOLockedValueBox<SocketAddress?>(nil)

    /// Lets a socket opened with `sharing` bind beside this one although their addresses overlap (Linux
    /// allows it when both have SO_REUSEPORT and the same owner). Used only on a socket about to close, for
    /// the moment a reload holds both. A second agent binds without SO_REUSEPORT and is still refused the
    /// port; only a process of the same user that sets SO_REUSEPORT itself could join the port of a socket
    /// opened this way (the kernel remembers the port's owner), as it always can with HAProxy, which sets
    /// SO_REUSEPORT on every listener.
    public func allowSharing() async throws {
        if let descriptor = spliceBox.withLockedValue({ $0?.descriptor }) {
            try ListeningSocket.set(descriptor, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT")
        }
        if let channel = channelBox.withLockedValue({ $0 }) {
            try await channel.setOption(ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_REUSEPORT)), value: 1)
        }
    }

    /// Takes SO_REUSEPORT off again once the overlapping socket has closed (or the reload was rolled back),
    /// so that a socket of another address on this port is refused again.
    public func forbidSharing() async {
        if let descriptor = spliceBox.withLockedValue({ $0?.descriptor }) {
            var zero: CInt = 0
            _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &zero, socklen_t(MemoryLayout<CInt>.size))
        }
        if let channel = channelBox.withLockedValue({ $0 }) {
            try? await channel.setOption(ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_REUSEPORT)), value: 0)
        }
    }

    /// Stops accepting; connections already accepted go on.
    public func close() async {
        if let splice = spliceBox.withLockedValue({ box in defer { box = nil }; return box }) {
            await splice.engine.stopListening(splice.descriptor)
            Glibc.close(splice.descriptor)
        }
        let channel = channelBox.withLockedValue { $0 }
        try? await channel?.close()
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

    private func initializeConnection(_ channel: any Channel, logger: Logger) throws {
        let listener = self.listener
        let policy = listener.policy
        guard admitOrRefuse(listener: listener, policy: policy) else {
            channel.close(promise: nil)
            return
        }
        let record = ConnectionRecord(listener: listener, logger: logger, lineWriter: lineWriter, peer: channel.remoteAddress)
        let relay = RelayHandler(side: .client, record: record)
        let admission = AdmissionHandler(
            policy: policy, record: record, clientRelay: relay,
            expectProxyHeader: policy.trusts(channel.remoteAddress)
        )
        try channel.pipeline.syncOperations.addHandlers(admission, relay)
        connections.add(channel)
    }
}
