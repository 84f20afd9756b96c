import Logging
import NIOCore
import Prometheus
import Synchronization
import TailgateConfig

/// The servers of one upstream with addresses resolved, and the round-robin position shared by all event loops.
public final class UpstreamPool: Sendable {
    public let name: String
    public let servers: [SocketAddress]
    public let sendProxy: ProxyProtocolMode
    public let connectTimeout: TimeAmount
    public let idleTimeout: TimeAmount
    /// How long new connections skip a server after a connect to it failed (zero: never).
    public let failTimeout: TimeAmount
    /// Where relayed connections per server are counted (shared by every generation).
    let usage: ServerUsage
    let health: ServerHealthBoard
    let metrics: ProxyMetrics
    /// Connect times of this upstream, looked up once rather than per connection.
    let connectHistogram: DurationHistogram
    private let cursor = Atomic<Int>(0)

    public init(
        name: String, servers: [SocketAddress], sendProxy: ProxyProtocolMode, connectTimeout: Duration, idleTimeout: Duration,
        failTimeout: Duration = .zero, usage: ServerUsage, health: ServerHealthBoard, metrics: ProxyMetrics
    ) {
        self.usage = usage
        self.health = health
        self.metrics = metrics
        metrics.initialize(upstream: name, servers: servers.map(\.endpointDescription))
        self.connectHistogram = metrics.connectHistogram(upstream: name)
        self.name = name
        self.servers = servers
        self.sendProxy = sendProxy
        self.connectTimeout = .milliseconds(connectTimeout.wholeMilliseconds)
        self.idleTimeout = .milliseconds(idleTimeout.wholeMilliseconds)
        self.failTimeout = .milliseconds(failTimeout.wholeMilliseconds)
    }

    /// A connect to `server` failed: counted, and (with a fail_timeout) the server is skipped by new
    /// connections until it passes, as nginx's max_fails=1 does; the skipping is logged when it begins.
    func connectFailed(_ server: SocketAddress, reason: String, logger: Logger) {
        metrics.connectFailed(upstream: name, server: server.endpointDescription)
        guard failTimeout > .zero, health.noteFailure(upstream: name, server: server, until: .now() + failTimeout) else { return }
        logger.warning("upstream server failed a connect; new connections skip it for fail_timeout", metadata: [
            "upstream": .string(name), "server": .string(server.endpointDescription), "error": .string(reason),
            "fail_timeout_ms": .stringConvertible(failTimeout.nanoseconds / 1_000_000),
        ])
    }

    /// A connect to `server` succeeded: a server skipped for a failure (tried because every one was) is not.
    func connectSucceeded(_ server: SocketAddress) {
        health.clearFailure(upstream: name, server: server)
    }

    /// The servers a new connection tries, in order: round robin over those not marked down by active
    /// checks nor skipped after a failed connect; when every server is, all of them (better a try than a
    /// certain failure). None while no server's name has resolved yet.
    func candidates() -> (servers: [SocketAddress], allDown: Bool) {
        if servers.isEmpty { return ([], true) }
        if servers.count == 1, !health.isDown(upstream: name, server: servers[0]) {
            return (servers, false)
        }
        let ticket = cursor.add(1, ordering: .relaxed).oldValue
        let start = Int(UInt(bitPattern: ticket) % UInt(servers.count))
        var ordered: [SocketAddress] = []
        ordered.reserveCapacity(servers.count)
        for offset in 0..<servers.count {
            let server = servers[(start + offset) % servers.count]
            if !health.isDown(upstream: name, server: server) { ordered.append(server) }
        }
        if ordered.isEmpty {
            return ((0..<servers.count).map { servers[(start + $0) % servers.count] }, true)
        }
        return (ordered, false)
    }
}
