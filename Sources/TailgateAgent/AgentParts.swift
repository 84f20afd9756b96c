import Logging
import NIOCore
import NIOPosix
import Prometheus
import TailgateProxy
import TailgateSystem

/// What lives as long as the process and every configuration generation shares: the relay threads, the
/// health endpoint's event loop, the metrics, the ledgers of server use and health, the connection budget,
/// the active checks and the firewall. Made once at start; reloads change what these serve, not these.
final class AgentParts: Sendable {
    /// Accepts, admits and relays every connection.
    let relay: SpliceRelayEngine
    /// The event loop of the health endpoint (the relay has threads of its own).
    let healthLoops: MultiThreadedEventLoopGroup
    let registry: PrometheusCollectorRegistry
    let metrics: ProxyMetrics
    let usage: ServerUsage
    let healthBoard = ServerHealthBoard()
    /// `[global] max_connections`, shared by every listener.
    let budget: ConnectionBudget
    /// The open-file limit after raising the soft limit to the hard one, and the global limit it implies.
    let openFileLimit: Int
    let counterSync = CounterSync()
    let gaugeSweep = GaugeSweep()
    let checker: UpstreamChecker
    let firewall: FirewallController
    /// Bans asked for through the control socket and by listeners' ban rules.
    let bans: BanDesk
    /// Where the relay threads ask for bans and look up banned clients behind trusted hops.
    let banBoard = BanBoard()
    /// Pulls CrowdSec's decisions into the ban sets (`[bans.crowdsec]`).
    let crowdsec = CrowdSecBouncer()
    /// Rung when a configuration is applied, so that the checker and firewall services, which sleep until
    /// their next deadline, look at it at once.
    /// New connections per second per listener, for /status.
    let connectionRates = ConnectionRates()
    /// The health endpoint's connections, against its caps.
    let healthConnections = HealthConnectionTable(limit: HealthService.maxConnections, perSource: HealthService.maxConnectionsPerSource)
    let checkerBell = Doorbell()
    let firewallBell = Doorbell()
    let resolverBell = Doorbell()

    /// Throws when the kernel refuses the relay threads' descriptors (epoll, eventfd) or threads.
    init(logger: Logger) throws(SystemCallError) {
        relay = try SpliceRelayEngine(threads: System.coreCount)
        healthLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        usage = ServerUsage(logger: logger)
        registry = PrometheusCollectorRegistry()
        metrics = ProxyMetrics(registry: registry)
        checker = UpstreamChecker(board: healthBoard, logger: logger)
        openFileLimit = OpenFileLimit.raise()
        budget = ConnectionBudget(limit: ConnectionBudget.defaultLimit(openFileLimit: openFileLimit))
        firewall = FirewallController(logger: logger)
        bans = BanDesk(logger: logger)
    }

    /// Wakes the services that sleep until their next deadline: a new configuration may change it.
    func ringBells() {
        checkerBell.ring()
        firewallBell.ring()
        resolverBell.ring()
    }
}
