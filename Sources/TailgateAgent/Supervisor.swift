import Logging
import NIOCore
import NIOPosix
import TailgateConfig
import Prometheus
import TailgateProxy
import TailgateSystem

/// One loaded configuration: its generation number and the SHA-256 of the file's bytes.
public struct ConfigurationGeneration: Sendable {
    public let number: Int
    public let hash: String
    public let configuration: TailgateConfiguration
    public var shortHash: String { String(hash.prefix(12)) }
}

/// The outcome of the last reload, for logs and (later) /status.
public struct ReloadReport: Sendable {
    public let succeeded: Bool
    /// The generation serving after the reload.
    public let generation: Int
    public let errors: [String]
    public let duration: Duration
}

/// Owns what runs: the configuration generations, the reload transaction and the drain.
actor Supervisor {
    let configPath: String
    let logger: Logger
    let notifier: SystemdNotifier
    /// The event loop of the health endpoint (the relay has threads of its own).
    let healthLoops: MultiThreadedEventLoopGroup
    /// Accepts, admits and relays every connection.
    let relay: SpliceRelayEngine
    let usage: ServerUsage
    let registry: PrometheusCollectorRegistry
    let metrics: ProxyMetrics
    let healthBoard = ServerHealthBoard()
    /// `[global] max_connections`, shared by every listener.
    let budget: ConnectionBudget
    /// The open-file limit after raising the soft limit to the hard one, and the global limit it implies.
    let openFileLimit: Int
    let counterSync = CounterSync()
    let gaugeSweep = GaugeSweep()
    let checker: UpstreamChecker
    /// Rung when a configuration is applied, so that the checker and firewall services, which sleep until
    /// their next deadline, look at it at once.
    let checkerBell = Doorbell()
    let firewallBell = Doorbell()
    let startedAt = ContinuousClock.now
    let startedWallClock = Timestamp.now()
    private let listeners: ListenerSet
    let firewall: FirewallController
    private(set) var plan: ProxyPlan?
    private(set) var reloads = 0
    private(set) var lastReloadTime: String?
    private(set) var current: ConfigurationGeneration?
    private(set) var lastReload: ReloadReport?
    private(set) var reloadFailures = 0
    private var stopping = false
    /// Set while the last reload failed because a listener could not be bound (a reason for /readyz).
    private(set) var lastBindFailure: String?
    private(set) var healthBindFailure: String?
    /// The configuration given at start, before `current` exists.
    nonisolated let initialHealth: HealthConfiguration?
    private var abortRequested = false
    /// A SIGHUP that came while the first configuration was being applied; served once it is.
    private var reloadPending = false
    /// Where reloads read the file and resolve names (blocking calls); never shut down, as a read that
    /// never returns (a FIFO) would hold the shutdown.
    private let loader: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()
    /// A reload is running; SIGHUPs meanwhile set `reloadAgain`.
    private var reloadRunning = false
    private var reloadAgain = false
    /// From RELOADING=1 to READY=1, for the status line.
    private var reloadUnderWay = false
    /// Reloads ignored while draining; the first is a warning, the rest debug.
    private var reloadsIgnoredWhileStopping = 0

    /// Throws when the kernel refuses the relay threads' descriptors (epoll, eventfd) or threads.
    init(configPath: String, logger: Logger, notifier: SystemdNotifier, initialHealth: HealthConfiguration? = nil) throws(SystemCallError) {
        self.initialHealth = initialHealth
        self.configPath = configPath
        self.logger = logger
        self.notifier = notifier
        self.relay = try SpliceRelayEngine(threads: System.coreCount)
        self.healthLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.usage = ServerUsage(logger: logger)
        self.registry = PrometheusCollectorRegistry()
        self.metrics = ProxyMetrics(registry: registry)
        self.checker = UpstreamChecker(board: healthBoard, logger: logger)
        self.openFileLimit = OpenFileLimit.raise()
        self.budget = ConnectionBudget(limit: ConnectionBudget.defaultLimit(openFileLimit: openFileLimit))
        self.listeners = ListenerSet(relay: relay, logger: logger, metrics: metrics, budget: budget)
        self.firewall = FirewallController(logger: logger)
    }

    private func ringBells() {
        checkerBell.ring()
        firewallBell.ring()
    }

    /// The steps every reload runs, in order.
    private var steps: [any ReloadStep] { [listeners, firewall] }

    /// How often the firewall is verified (nil when it is not enabled).
    var firewallCheckInterval: Duration? {
        guard let firewall = current?.configuration.firewall, firewall.enabled else { return nil }
        return firewall.checkInterval
    }

    /// Applies the first configuration; throws when a listener cannot be bound.
    func start(_ configuration: TailgateConfiguration, bytes: [UInt8]) async throws {
        for warning in configuration.warnings { logger.warning("\(warning)") }
        applyConnectionLimit(configuration)
        relay.spreadAcceptsOverAllThreads(configuration.acceptSpread == .all)
        let plan = try ProxyPlan.make(configuration, file: configPath, generation: 1, usage: usage, health: healthBoard, metrics: metrics)
        do {
            try await ReloadTransaction.run(steps, plan: plan)
        } catch {
            throw error.underlying
        }
        self.plan = plan
        checker.configure(configuration, plan: plan)
        let generation = ConfigurationGeneration(number: 1, hash: ContentHash.sha256Hex(bytes), configuration: configuration)
        current = generation
        ringBells()
        logger.info("ready", metadata: [
            "config": .string(configPath), "generation": .stringConvertible(1), "hash": .string(generation.shortHash),
            "listeners": .stringConvertible(configuration.listeners.count), "upstreams": .stringConvertible(configuration.upstreams.count),
            "max_connections": .stringConvertible(budget.limit), "open_file_limit": .stringConvertible(openFileLimit),
        ])
        notifier.send("READY=1\nSTATUS=\(await statusLine())\nMAINPID=\(getpid())")
        StartupPages.release()
        if reloadPending {
            // Not awaited: start returns now, so that a stop request is heard while the reload reads the file.
            reloadPending = false
            Task { await self.reload() }
        }
    }

    /// SIGHUP: re-reads the file and applies it as one transaction, or changes nothing. One reload runs at a
    /// time; SIGHUPs during it make one more follow it (the file may have changed since it was read).
    @discardableResult
    func reload() async -> ReloadReport {
        guard !stopping else {
            reloadsIgnoredWhileStopping += 1
            logger.log(level: reloadsIgnoredWhileStopping == 1 ? .warning : .debug, "reload ignored: the agent is stopping")
            return ReloadReport(succeeded: false, generation: current?.number ?? 0, errors: ["stopping"], duration: .zero)
        }
        guard let previous = current else {
            // The file may have changed after it was read at start: read it again once the first one is applied.
            reloadPending = true
            logger.info("reload requested while starting; it follows once ready")
            return ReloadReport(succeeded: false, generation: 0, errors: ["starting"], duration: .zero)
        }
        guard !reloadRunning else {
            reloadAgain = true
            return ReloadReport(succeeded: false, generation: previous.number, errors: ["queued"], duration: .zero)
        }
        reloadRunning = true
        defer { reloadRunning = false }
        var report = await reloadOnce(previous: previous)
        while reloadAgain, !stopping, let current {
            reloadAgain = false
            report = await reloadOnce(previous: current)
        }
        return report
    }

    private func reloadOnce(previous: ConfigurationGeneration) async -> ReloadReport {
        let started = ContinuousClock.now
        reloadUnderWay = true
        defer { reloadUnderWay = false }
        notifier.send("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())\nSTATUS=reloading \(configPath)")
        logger.info("reloading", metadata: ["config": .string(configPath)])
        let next = previous.number + 1
        var errors: [String] = []
        do throws(ConfigurationErrors) {
            // Reading the file and resolving names block (a slow DNS server, a FIFO with no writer): done off
            // the actor, so that SIGTERM, the health endpoint and the watchdog are served meanwhile.
            let (configuration, bytes, plan) = try await Self.load(
                configPath, generation: next, usage: usage, health: healthBoard, metrics: metrics, on: loader
            ).get()
            for warning in configuration.warnings { logger.warning("reload: \(warning)") }
            guard !stopping else {
                logger.info("reload abandoned: the agent is stopping")
                return ReloadReport(succeeded: false, generation: previous.number, errors: ["stopping"], duration: ContinuousClock.now - started)
            }
            do {
                try await ReloadTransaction.run(steps, plan: plan)
                lastBindFailure = nil
                applyConnectionLimit(configuration)
                relay.spreadAcceptsOverAllThreads(configuration.acceptSpread == .all)
                LogSettings.shared.apply(configuration.log)
            } catch {
                if case .bindFailed(_, _, let position, let keyPath, _)? = error.underlying as? AgentError {
                    lastBindFailure = "\(error.underlying)"
                    throw ConfigurationErrors([ConfigurationError(
                        file: configPath, position: position, keyPath: keyPath, message: "\(error.underlying)"
                    )])
                }
                throw ConfigurationErrors([ConfigurationError(
                    file: configPath, position: .init(line: 1, column: 1), keyPath: "", message: "\(error.step): \(error.underlying)"
                )])
            }
            let generation = ConfigurationGeneration(number: next, hash: ContentHash.sha256Hex(bytes), configuration: configuration)
            current = generation
            announceServerChanges(from: self.plan, to: plan)
            healthBoard.reviseFailures(plan.pools.mapValues(\.failTimeout))
            self.plan = plan
            checker.configure(configuration, plan: plan)
            ringBells()
            if (configuration.health?.listen.map(\.value) ?? []) != (initialHealth?.listen.map(\.value) ?? []) {
                logger.warning("[health] listen changed; the health endpoint keeps its addresses until tailgate restarts", metadata: [
                    "listening": .string(initialHealth?.listen.map(\.value.endpointDescription).joined(separator: ",") ?? "none"),
                ])
            }
        } catch {
            errors = error.errors.map(\.description)
        }
        let duration = ContinuousClock.now - started
        let serving = current?.number ?? previous.number
        let report = ReloadReport(succeeded: errors.isEmpty, generation: serving, errors: errors, duration: duration)
        lastReload = report
        lastReloadTime = Timestamp.now()
        reloads += 1
        if errors.isEmpty {
            logger.info("reloaded", metadata: [
                "generation": .stringConvertible(serving), "hash": .string(current?.shortHash ?? ""),
                "duration_ms": .stringConvertible(duration.wholeMilliseconds),
            ])
        } else {
            reloadFailures += 1
            for error in errors { logger.error("reload: \(error)") }
            logger.error("reload failed; still serving the previous configuration", metadata: [
                "generation": .stringConvertible(serving), "errors": .stringConvertible(errors.count),
            ])
        }
        reloadUnderWay = false
        notifier.send("READY=1\nSTATUS=\(await statusLine())")
        return report
    }

    /// The file read and turned into a plan on the loader thread, not a thread of Swift's small cooperative
    /// pool (one thread on a 1-CPU host), which a blocked read would take from every service.
    private static func load(
        _ path: String, generation: Int, usage: ServerUsage, health: ServerHealthBoard, metrics: ProxyMetrics,
        on loader: NIOThreadPool
    ) async -> Result<(TailgateConfiguration, [UInt8], ProxyPlan), ConfigurationErrors> {
        let result = try? await loader.runIfActive { () -> Result<(TailgateConfiguration, [UInt8], ProxyPlan), ConfigurationErrors> in
            do throws(ConfigurationErrors) {
                let (configuration, bytes) = try ConfigurationFile.load(path: path)
                let plan = try ProxyPlan.make(configuration, file: path, generation: generation, usage: usage, health: health, metrics: metrics)
                return .success((configuration, bytes, plan))
            } catch {
                return .failure(error)
            }
        }
        return result ?? .failure(ConfigurationErrors([ConfigurationError(
            file: path, position: .init(line: 1, column: 1), keyPath: "", message: "the loader thread is not running"
        )]))
    }

    /// Sets the global connection limit; warns when the descriptors cannot carry it (each relayed connection
    /// holds two sockets, and the splice relay a pipe pair while it moves bulk data).
    private func applyConnectionLimit(_ configuration: TailgateConfiguration) {
        let limit = configuration.maxConnections ?? ConnectionBudget.defaultLimit(openFileLimit: openFileLimit)
        if let configured = configuration.maxConnections, configured > ConnectionBudget.defaultLimit(openFileLimit: openFileLimit), configured != budget.limit {
            logger.warning("[global] max_connections is more than the open-file limit can carry; past about a third of it, accepts and upstream connects fail for want of descriptors (raise LimitNOFILE)", metadata: [
                "max_connections": .stringConvertible(configured), "open_file_limit": .stringConvertible(openFileLimit),
                "carried": .stringConvertible(ConnectionBudget.defaultLimit(openFileLimit: openFileLimit)),
            ])
        }
        budget.limit = limit
    }

    /// Tells the usage ledger which servers (resolved addresses, so named servers count too) left the
    /// configuration and which came back.
    private func announceServerChanges(from old: ProxyPlan?, to new: ProxyPlan) {
        func addresses(_ plan: ProxyPlan?) -> Set<SocketAddress> {
            Set(plan?.pools.values.flatMap(\.servers) ?? [])
        }
        let before = addresses(old), after = addresses(new)
        usage.serversChanged(left: before.subtracting(after), present: after)
    }

    /// SIGTERM/SIGINT: stop accepting, let connections finish up to drain_timeout (or a second signal), close the rest.
    func drainAndStop() async {
        stopping = true
        let timeout = current?.configuration.drainTimeout ?? ConfigurationDefaults.drainTimeout
        notifier.send("STOPPING=1\nSTATUS=draining connections")
        await listeners.closeAll()
        let open = await listeners.openConnections
        logger.info("stopping: no longer accepting; draining connections", metadata: [
            "connections": .stringConvertible(open),
            "drain_timeout_ms": .stringConvertible(timeout.wholeMilliseconds),
        ])
        let deadline = ContinuousClock.now + timeout
        while await listeners.openConnections > 0, ContinuousClock.now < deadline, !abortRequested {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let remaining = await listeners.openConnections
        if remaining > 0 {
            logger.warning(abortRequested ? "second stop signal: closing remaining connections" : "drain_timeout reached; closing remaining connections",
                           metadata: ["connections": .stringConvertible(remaining)])
            await listeners.closeConnections()
            let closeDeadline = ContinuousClock.now + .seconds(2)
            while await listeners.openConnections > 0, ContinuousClock.now < closeDeadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        relay.shutdown()
        logger.info("stopped")
    }

    func noteHealthBindFailure(_ text: String) {
        healthBindFailure = text
    }

    /// Why /readyz answers 503; empty when ready.
    func notReadyReasons() -> [String] {
        var reasons: [String] = []
        if current == nil { reasons.append("starting: configuration not applied yet") }
        if stopping { reasons.append("stopping: draining connections") }
        if let lastBindFailure { reasons.append("a listener cannot be bound (\(lastBindFailure)); still serving generation \(current?.number ?? 0)") }
        if let healthBindFailure { reasons.append("health endpoint cannot be bound: \(healthBindFailure)") }
        self.firewall.refreshInSync()
        let firewall = firewall.snapshot
        if firewall.enabled, !firewall.inSync {
            reasons.append("firewall out of step with the configuration" + (firewall.lastError.map { ": \($0)" } ?? ""))
        }
        return reasons
    }

    /// A second SIGTERM/SIGINT while draining.
    func abortDrain() {
        abortRequested = true
    }

    /// Listener runtimes and their bound addresses, for /status.
    /// Listeners a reload removed that still carry connections.
    var removedListenersInUse: [String: ListenerRuntime] {
        get async { await listeners.removedListenersInUse }
    }

    var listenerSnapshot: (runtimes: [String: ListenerRuntime], binds: [String: [SocketAddress]], open: Int) {
        get async { (await listeners.listeners, await listeners.bindsByListener, await listeners.openConnections) }
    }

    /// The one-line status systemd shows; a drain, and a refused reload until one is applied, stay in it.
    func statusLine() async -> String {
        let connections = await listeners.openConnections
        guard let current else { return "starting" }
        if stopping { return "draining connections: \(connections) left" }
        let line = "generation \(current.number) (\(current.shortHash)), \(connections) connections"
        if reloadUnderWay { return "reloading \(configPath), still serving \(line)" }
        guard let lastReload, !lastReload.succeeded else { return line }
        return "reload failed (\(lastReload.errors.count) errors), still serving \(line)"
    }
}
