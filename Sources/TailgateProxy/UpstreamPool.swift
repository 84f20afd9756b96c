import Logging
import NIOCore
import Prometheus
import Synchronization
import TailgateConfig

/// The servers of one upstream with addresses resolved, and the round-robin positions shared by all event loops.
public final class UpstreamPool: Sendable {
    public let name: String
    public let servers: [SocketAddress]
    /// Tried after every one of `servers` (see `candidates`).
    public let backup: [SocketAddress]
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
    private let backupCursor = Atomic<Int>(0)

    public init(
        name: String, servers: [SocketAddress], backup: [SocketAddress] = [], sendProxy: ProxyProtocolMode, connectTimeout: Duration,
        idleTimeout: Duration, failTimeout: Duration = .zero, usage: ServerUsage, health: ServerHealthBoard, metrics: ProxyMetrics
    ) {
        self.usage = usage
        self.health = health
        self.metrics = metrics
        metrics.initialize(upstream: name, servers: (servers + backup).map(\.endpointDescription))
        self.connectHistogram = metrics.connectHistogram(upstream: name)
        self.name = name
        self.servers = servers
        self.backup = backup
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

    /// Every server, backups last.
    public var allServers: [SocketAddress] { backup.isEmpty ? servers : servers + backup }

    /// Whether `server` is one of the backups.
    public func isBackup(_ server: SocketAddress) -> Bool { backup.contains(server) }

    /// The servers a new connection tries, in order: round robin over those not marked down by active
    /// checks nor skipped after a failed connect, then the backups that are not, round robin among
    /// themselves (so a backup serves when every server is down, skipped, or fails this very connect, as
    /// nginx's and HAProxy's `backup` do). When every server and backup is down or skipped, all of them,
    /// servers first (better a try than a certain failure). None while no name has resolved yet.
    func candidates() -> (servers: [SocketAddress], allDown: Bool) {
        if servers.isEmpty && backup.isEmpty { return ([], true) }
        if backup.isEmpty, servers.count == 1, !health.isDown(upstream: name, server: servers[0]) {
            return (servers, false)
        }
        let start = Self.nextStart(cursor, count: servers.count)
        let backupStart = Self.nextStart(backupCursor, count: backup.count)
        var ordered: [SocketAddress] = []
        ordered.reserveCapacity(servers.count + backup.count)
        append(servers, from: start, to: &ordered, skippingDown: true)
        append(backup, from: backupStart, to: &ordered, skippingDown: true)
        if ordered.isEmpty {
            append(servers, from: start, to: &ordered, skippingDown: false)
            append(backup, from: backupStart, to: &ordered, skippingDown: false)
            return (ordered, true)
        }
        return (ordered, false)
    }

    /// Appends `list` starting at `start` and wrapping round, without the servers that are down when
    /// `skippingDown`.
    private func append(_ list: [SocketAddress], from start: Int, to ordered: inout [SocketAddress], skippingDown: Bool) {
        for offset in 0..<list.count {
            let server = list[(start + offset) % list.count]
            if !skippingDown || !health.isDown(upstream: name, server: server) { ordered.append(server) }
        }
    }

    /// The next round-robin start among `count` servers (0 for one or none: no atomic add).
    private static func nextStart(_ cursor: borrowing Atomic<Int>, count: Int) -> Int {
        guard count > 1 else { return 0 }
        let ticket = cursor.add(1, ordering: .relaxed).oldValue
        return Int(UInt(bitPattern: ticket) % UInt(count))
    }
}
