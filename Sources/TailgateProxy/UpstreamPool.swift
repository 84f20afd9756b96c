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
    /// Where relayed connections per server are counted (shared by every generation).
    let usage: ServerUsage
    let health: ServerHealthBoard
    let metrics: ProxyMetrics
    /// Connect times of this upstream, looked up once rather than per connection.
    let connectHistogram: DurationHistogram
    private let cursor = Atomic<Int>(0)

    public init(
        name: String, servers: [SocketAddress], sendProxy: ProxyProtocolMode, connectTimeout: Duration, idleTimeout: Duration,
        usage: ServerUsage, health: ServerHealthBoard, metrics: ProxyMetrics
    ) {
        self.usage = usage
        self.health = health
        self.metrics = metrics
        metrics.initialize(upstream: name, servers: servers.map(\.endpointDescription))
        self.connectHistogram = metrics.connectHistogram(upstream: name)
        precondition(!servers.isEmpty, "the loader refuses an upstream without servers")
        self.name = name
        self.servers = servers
        self.sendProxy = sendProxy
        self.connectTimeout = .milliseconds(connectTimeout.wholeMilliseconds)
        self.idleTimeout = .milliseconds(idleTimeout.wholeMilliseconds)
    }

    /// The servers a new connection tries, in order: round robin over those not marked down by
    /// active checks; when every server is down, all of them (better a try than a certain failure).
    func candidates() -> (servers: [SocketAddress], allDown: Bool) {
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
