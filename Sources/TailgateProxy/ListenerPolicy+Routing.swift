import NIOCore
import TailgateConfig
import TailgateWire

extension ListenerPolicy {
    /// Routes a complete ClientHello: records the SNI, ALPN, the route label and the upstream. Nil when
    /// nothing matches and the listener has no default.
    func route(_ hello: ClientHelloInfo, record: ConnectionRecord) -> UpstreamPool? {
        record.alpn = hello.alpn
        return route(name: hello.serverName, record: record).pool
    }

    /// Routes a server name (SNI or Host): records it, the route label and the upstream.
    private func route(name: String?, record: ConnectionRecord) -> (match: RouteTable.Match, pool: UpstreamPool?) {
        record.serverName = name
        let match = routes.route(serverName: name)
        switch match {
        case .exact(let upstream): record.route = name ?? upstream
        case .wildcard(let pattern, _): record.route = pattern
        case .fallback: record.route = "default"
        case .none: record.route = "none"
        }
        guard let upstream = match.upstream, let pool = upstreams[upstream] else { return (match, nil) }
        record.upstream = upstream
        return (match, pool)
    }

    /// Routes an HTTP request by its Host, with the rules SNI follows; records the Host where the SNI goes.
    func route(request head: HTTPRequestHead, record: ConnectionRecord) -> (RouteTable.Match, UpstreamPool?) {
        route(name: head.host, record: record)
    }

    /// The servers to try, in order; warns (rate-limited) when every one is marked down.
    func servers(of pool: UpstreamPool, record: ConnectionRecord) -> [SocketAddress] {
        let (servers, allDown) = pool.candidates()
        if servers.isEmpty {
            if pool.health.shouldWarnAllDown(pool.name) {
                record.logger.warning("no server of the upstream has an address yet (its names do not resolve); closing the connection", metadata: [
                    "upstream": .string(pool.name),
                ])
            }
        } else if allDown, pool.health.shouldWarnAllDown(pool.name) {
            record.logger.warning("every server of the upstream is marked down by its checks or skipped after a failed connect (fail_timeout); trying them anyway", metadata: [
                "upstream": .string(pool.name),
            ])
        }
        return servers
    }

    /// Writes the outbound PROXY header: the trusted inbound header's addresses when there was one,
    /// else the socket's peer and local address (IPv4-mapped addresses as IPv4).
    static func writeProxyHeader(
        _ mode: ProxyProtocolMode, peer: SocketAddress?, local: SocketAddress?, inbound: ProxyHeader?, authority: String?,
        into payload: inout ByteBuffer
    ) {
        var source = peer
        var destination = local
        if let inbound, inbound.command == .proxy, inbound.source != nil {
            source = inbound.source
            destination = inbound.destination
        }
        source = source?.unmappingIPv4()
        destination = destination?.unmappingIPv4()
        switch mode {
        case .none:
            break
        case .v1:
            ProxyHeaderEncoder.writeV1(source: source, destination: destination, into: &payload)
        case .v2:
            ProxyHeaderEncoder.writeV2(command: .proxy, source: source, destination: destination, authority: authority, into: &payload)
        }
    }
}
