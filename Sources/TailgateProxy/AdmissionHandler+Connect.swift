import NIOCore
import NIOPosix
import TailgateConfig
import TailgateWire

extension AdmissionHandler {
    /// Routes a complete ClientHello and starts connecting to the upstream.
    func admit(_ hello: ClientHelloInfo, context: ChannelHandlerContext) {
        guard let pool = policy.route(hello, record: record) else {
            reject(.noRoute, detail: nil, context: context)
            return
        }
        phase = .connecting
        let servers = policy.servers(of: pool, record: record)
        connect(pool, servers: servers, attempt: 0, context: context)
    }

    private func connect(_ pool: UpstreamPool, servers: [SocketAddress], attempt: Int, context: ChannelHandlerContext) {
        let server = servers[attempt]
        record.server = server
        let started = NIODeadline.now()
        let upstreamRelay = RelayHandler(side: .upstream, record: record)
        let boundRelay = NIOLoopBound(upstreamRelay, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(pool.connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(boundRelay.value)
                }
            }
            .connect(to: server)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    pool.connectHistogram.record(.nanoseconds((NIODeadline.now() - started).nanoseconds))
                    pool.connectSucceeded(server)
                    self.connected(channel, pool: pool, upstreamRelay: upstreamRelay, context: context)
                case .failure(let error):
                    let reason = Self.connectFailure(error, timeout: pool.connectTimeout)
                    pool.connectFailed(server, reason: reason, logger: self.record.logger)
                    guard case .connecting = self.phase else { return }
                    if attempt + 1 < servers.count {
                        self.record.logger.debug("upstream server failed, trying the next", metadata: [
                            "upstream": .string(pool.name), "server": .string(server.endpointDescription), "error": .string(reason),
                        ])
                        self.connect(pool, servers: servers, attempt: attempt + 1, context: context)
                    } else {
                        self.reject(.upstreamUnavailable, detail: "\(server.endpointDescription): \(reason)", context: context)
                    }
                }
            }
    }

    private func connected(_ channel: any Channel, pool: UpstreamPool, upstreamRelay: RelayHandler, context: ChannelHandlerContext) {
        guard case .connecting = phase else {
            channel.close(promise: nil)
            return
        }
        if let server = record.server {
            pool.usage.acquire(server)
            record.connectedServer = (server, pool.usage)
        }
        var payload = channel.allocator.buffer(capacity: (buffered?.readableBytes ?? 0) + 256)
        writeProxyHeader(pool.sendProxy, into: &payload, context: context)
        if var bytes = buffered {
            payload.writeBuffer(&bytes)
        }
        buffered = nil
        channel.writeAndFlush(payload, promise: nil)
        RelayHandler.pair(clientRelay, upstreamRelay)
        phase = .relaying
        scheduleIdleCheck(after: pool.idleTimeout, limit: pool.idleTimeout, context: context)
        if inputClosedWhileConnecting {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if heldRead {
            heldRead = false
            context.read()
        }
    }

    func writeProxyHeader(_ mode: ProxyProtocolMode, into payload: inout ByteBuffer, context: ChannelHandlerContext) {
        ListenerPolicy.writeProxyHeader(
            mode, peer: context.channel.remoteAddress, local: context.channel.localAddress, inbound: machine.proxyHeader,
            authority: record.serverName, into: &payload
        )
    }

    /// Closes the pair once nothing has moved in either direction for `limit`; checks only as often as needed.
    private func scheduleIdleCheck(after delay: TimeAmount, limit: TimeAmount, context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard case .relaying = self.phase else { return }
            let quiet = NIODeadline.now() - self.record.lastActivity
            if quiet >= limit {
                self.record.end(.idleTimeout)
                context.close(promise: nil)
            } else {
                self.scheduleIdleCheck(after: limit - quiet, limit: limit, context: context)
            }
        }
    }

    /// A failed connect in the splice engine's words: "connect: Connection refused (errno 111)", "connect timed
    /// out after 3000 ms" (NIO's read "connection reset (error set): …" and "Connect timeout (3 s)").
    static func connectFailure(_ error: any Error, timeout: TimeAmount) -> String {
        if let failure = error as? IOError { return SystemCallError("connect", errno: failure.errnoCode).description }
        if let failure = error as? ChannelError, case .connectTimeout = failure {
            return "connect timed out after \(timeout.nanoseconds / 1_000_000) ms"
        }
        return SystemCallError.describe(error)
    }
}
