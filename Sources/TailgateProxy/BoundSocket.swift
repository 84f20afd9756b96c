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
    let connections = ConnectionRegistry()

    init(address: SocketAddress, listener: ListenerRuntime) {
        self.address = address
        self.listenerBox = NIOLockedValueBox(listener)
    }

    /// The listener that new connections on this socket belong to.
    public var listener: ListenerRuntime {
        get { listenerBox.withLockedValue { $0 } }
        set { listenerBox.withLockedValue { $0 = newValue } }
    }

    /// Opens the socket. Throws the bind error (address in use, permission denied) as is.
    public static func bind(
        _ address: SocketAddress, listener: ListenerRuntime, group: any EventLoopGroup, logger: Logger
    ) async throws -> BoundSocket {
        let socket = BoundSocket(address: address, listener: listener)
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1_024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // IP_FREEBIND: a tailnet address (100.x) may not exist yet when tailgate starts at boot,
            // before tailscaled; the socket binds now and accepts once the address appears.
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .ip, name: .init(rawValue: IP_FREEBIND)), value: 1)
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
        channelBox.withLockedValue { $0?.localAddress }
    }

    /// Stops accepting; connections already accepted go on.
    public func close() async {
        let channel = channelBox.withLockedValue { $0 }
        try? await channel?.close()
    }

    /// Connections accepted on this socket that are still open.
    public var openConnections: Int { connections.count }

    /// Waits until the connections accepted here have finished, or `deadline`; then closes what is left.
    /// Returns how many had to be closed.
    @discardableResult
    public func drain(until deadline: ContinuousClock.Instant) async -> Int {
        while connections.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = connections.count
        if left > 0 { connections.closeAll() }
        return left
    }

    /// Closes every connection accepted here at once.
    public func closeConnections() {
        connections.closeAll()
    }

    private func initializeConnection(_ channel: any Channel, logger: Logger) throws {
        let listener = self.listener
        let policy = listener.policy
        guard listener.admit(limit: policy.maxConnections) else {
            listener.countRefusedOverLimit()
            listener.metrics.overLimit(listener: listener.name)
            channel.close(promise: nil)
            if listener.shouldWarnOverLimit() {
                logger.warning("listener is at max_connections; closing new connections", metadata: [
                    "listener": .string(listener.name), "max_connections": .stringConvertible(policy.maxConnections),
                    "rejected_so_far": .stringConvertible(listener.refusedOverLimitCount),
                ])
            }
            return
        }
        let record = ConnectionRecord(listener: listener, logger: logger, peer: channel.remoteAddress)
        let relay = policy.splice == nil ? RelayHandler(side: .client, record: record) : nil
        let admission = AdmissionHandler(
            policy: policy, record: record, clientRelay: relay, registry: connections,
            expectProxyHeader: policy.trusts(channel.remoteAddress)
        )
        try channel.pipeline.syncOperations.addHandler(admission)
        if let relay { try channel.pipeline.syncOperations.addHandler(relay) }
        connections.add(channel)
    }
}
