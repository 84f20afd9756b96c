import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TailgateConfig
import TailgateProbe
import TailgateProxy

/// Active checks of upstream servers with rise/fall hysteresis. State is keyed by upstream name and
/// server address, so it survives reloads; a state change is logged once.
final class UpstreamChecker: Sendable {
    /// What /status shows for one server.
    struct ServerState: Sendable {
        var upstream: String
        var server: SocketAddress
        var kind: UpstreamCheckConfiguration.Kind
        /// nil until the first verdict (rise successes or fall failures).
        var isUp: Bool?
        var successes = 0
        var failures = 0
        var lastResult: ProbeResult?
        var lastCheck: String?
    }

    private struct Key: Hashable {
        let upstream: String
        let server: SocketAddress
    }

    private let states = NIOLockedValueBox<[Key: ServerState]>([:])
    private let board: ServerHealthBoard
    private let logger: Logger
    private let pool: NIOThreadPool

    init(board: ServerHealthBoard, logger: Logger) {
        self.board = board
        self.logger = logger
        self.pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
    }

    var snapshot: [ServerState] {
        states.withLockedValue { Array($0.values) }.sorted { ($0.upstream, $0.server.description) < ($1.upstream, $1.server.description) }
    }

    /// Keeps state only for the servers the configuration still checks.
    func configure(_ configuration: TailgateConfiguration, plan: ProxyPlan) {
        var keep: [(upstream: String, server: SocketAddress)] = []
        for (name, upstream) in configuration.upstreams where upstream.check.kind != .none {
            for server in plan.servers(of: name) { keep.append((name, server)) }
        }
        let keys = Set(keep.map { Key(upstream: $0.upstream, server: $0.server) })
        states.withLockedValue { states in
            states = states.filter { keys.contains($0.key) }
            for key in keys where states[key] == nil {
                let kind = configuration.upstreams[key.upstream]?.check.kind ?? .none
                states[key] = ServerState(upstream: key.upstream, server: key.server, kind: kind)
            }
        }
        board.retain(keep)
    }

    /// Runs one check of every server due, concurrently; returns when all have finished.
    func checkAll(_ configuration: TailgateConfiguration, plan: ProxyPlan) async {
        await withTaskGroup(of: Void.self) { group in
            for (name, upstream) in configuration.upstreams where upstream.check.kind != .none {
                for server in plan.servers(of: name) {
                    group.addTask { await self.check(name, upstream, server) }
                }
            }
        }
    }

    private func check(_ name: String, _ upstream: UpstreamConfiguration, _ server: SocketAddress) async {
        let request = ProbeRequest(
            kind: upstream.check.kind.usesTLS ? .tls : .tcp, server: server, timeout: upstream.check.timeout,
            serverName: upstream.check.serverName, caFile: upstream.check.caFile?.value,
            preamble: upstream.sendProxy == .v2 ? .v2 : upstream.sendProxy == .v1 ? .v1 : ProbeRequest.ProxyPreamble.none,
            httpPath: upstream.check.kind == .https ? upstream.check.path : nil
        )
        let result = (try? await pool.runIfActive { UpstreamProbe.run(request) })
            ?? ProbeResult(failure: .network("checker stopped"), duration: .zero, certificateNotAfter: nil)
        record(result, upstream: name, server: server, check: upstream.check)
    }

    func record(_ result: ProbeResult, upstream: String, server: SocketAddress, check: UpstreamCheckConfiguration) {
        let key = Key(upstream: upstream, server: server)
        let change = states.withLockedValue { states -> (Bool, ServerState)? in
            var state = states[key] ?? ServerState(upstream: upstream, server: server, kind: check.kind)
            state.lastResult = result
            state.lastCheck = Timestamp.now()
            if result.isHealthy {
                state.successes += 1
                state.failures = 0
            } else {
                state.failures += 1
                state.successes = 0
            }
            var changed: Bool?
            if state.isUp != true, state.successes >= check.rise {
                state.isUp = true
                changed = true
            } else if state.isUp != false, state.failures >= check.fall {
                state.isUp = false
                changed = false
            }
            states[key] = state
            return changed.map { ($0, state) }
        }
        guard let (up, state) = change else { return }
        board.markDown(upstream: upstream, server: server, !up)
        let metadata: Logger.Metadata = [
            "upstream": .string(upstream), "server": .string(server.endpointDescription),
            "check": .string(state.kind.rawValue), "result": .string(result.summary),
        ]
        if up {
            logger.info("upstream server is up", metadata: metadata)
        } else {
            logger.warning("upstream server is down", metadata: metadata)
        }
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
