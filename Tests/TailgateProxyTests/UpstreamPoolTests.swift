import NIOCore
import Prometheus
import Testing
@testable import TailgateProxy

/// The order in which a new connection tries an upstream's servers, backups included.
@Suite struct UpstreamPoolTests {
    private static func address(_ port: Int) -> SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: port) }
    private static let (a, b, x, y) = (address(1001), address(1002), address(2001), address(2002))

    private static func pool(servers: [SocketAddress], backup: [SocketAddress], health: ServerHealthBoard) -> UpstreamPool {
        UpstreamPool(
            name: "app", servers: servers, backup: backup, sendProxy: .none, connectTimeout: .seconds(1), idleTimeout: .seconds(60),
            usage: ServerUsage(logger: .init(label: "test")), health: health, metrics: ProxyMetrics(registry: PrometheusCollectorRegistry())
        )
    }

    @Test func serversComeFirstInRoundRobinAndTheBackupsAfterThemSoAFailedConnectFallsToABackup() {
        let pool = Self.pool(servers: [Self.a, Self.b], backup: [Self.x, Self.y], health: ServerHealthBoard())
        let first = pool.candidates(), second = pool.candidates()
        #expect(first.allDown == false && second.allDown == false)
        #expect(Set(first.servers.prefix(2)) == [Self.a, Self.b] && Set(first.servers.suffix(2)) == [Self.x, Self.y], "\(first.servers)")
        #expect(first.servers[0] != second.servers[0], "the servers take turns: \(first.servers) then \(second.servers)")
        #expect(first.servers[2] != second.servers[2], "so do the backups: \(first.servers) then \(second.servers)")
    }

    @Test func whenEveryServerIsDownOnlyTheBackupsAreTried() {
        let health = ServerHealthBoard()
        let pool = Self.pool(servers: [Self.a, Self.b], backup: [Self.x], health: health)
        health.markDown(upstream: "app", server: Self.a, true)
        #expect(pool.candidates().servers == [Self.b, Self.x])
        health.markDown(upstream: "app", server: Self.b, true)
        #expect(pool.candidates() == ([Self.x], false))
        health.markDown(upstream: "app", server: Self.x, true)
        // Everything is down: all of them, servers first (better a try than a certain failure).
        let all = pool.candidates()
        #expect(all.allDown && Set(all.servers.prefix(2)) == [Self.a, Self.b] && all.servers.last == Self.x, "\(all)")
        health.markDown(upstream: "app", server: Self.a, false)
        #expect(pool.candidates() == ([Self.a], false))
    }

    @Test func anUpstreamWithoutBackupsIsUnchanged() {
        let health = ServerHealthBoard()
        let single = Self.pool(servers: [Self.a], backup: [], health: health)
        #expect(single.candidates() == ([Self.a], false))
        health.markDown(upstream: "app", server: Self.a, true)
        #expect(single.candidates() == ([Self.a], true))
        #expect(single.allServers == [Self.a] && !single.isBackup(Self.a))
        let onlyBackups = Self.pool(servers: [], backup: [Self.x], health: ServerHealthBoard())
        #expect(onlyBackups.candidates() == ([Self.x], false) && onlyBackups.isBackup(Self.x))
    }
}
