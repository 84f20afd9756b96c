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

/// The outcome of a reload, for logs, /status and /metrics.
public struct ReloadReport: Sendable {
    public let succeeded: Bool
    /// The generation serving after the reload.
    public let generation: Int
    public let errors: [String]
    public let duration: Duration
}

/// Owns what runs: the configuration generations, the reload transaction and the drain. The parts every
/// generation shares are in `parts`; where the agent is in its life is `life`.
actor Supervisor {
    let configPath: String
    let logger: Logger
    let notifier: SystemdNotifier
    nonisolated let parts: AgentParts
    /// The configuration given at start, before `current` exists.
    nonisolated let initialHealth: HealthConfiguration?
    let startedAt = ContinuousClock.now
    let startedWallClock = Timestamp.now()
    private let listeners: ListenerSet
    /// Where reloads read the file and resolve names (blocking calls); never shut down, as a read that
    /// never returns (a FIFO) would hold the shutdown.
    private let loader: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()
    private(set) var plan: ProxyPlan?
    private(set) var current: ConfigurationGeneration?
    private(set) var life = ReloadLife.starting(pending: false)
    private(set) var history = ReloadHistory()
    /// Set while the last reload failed because a listener could not be bound (a reason for /readyz).
    private(set) var lastBindFailure: String?
    private(set) var healthBindFailure: String?
    /// Listening sockets passed in at start (the unit's file descriptor store, or the predecessor's on an
    /// upgrade), until the configuration claims them.
    nonisolated let inherited: InheritedSockets
    nonisolated let store: SocketStore
    /// The predecessor's end of the upgrade channel, when this process was started by a hand-over.
    private var predecessor: CInt?
    /// Duplicates of the health endpoint's listening sockets, for the next hand-over.
    private var healthSockets: [(name: String, descriptor: CInt)] = []
    /// Set while a hand-over to a new process is under way (a second SIGUSR2 meanwhile is ignored).
    private var handingOver = false
    /// The control socket, once `[bans]` enabled it.
    private var control: ControlSocket?
    /// The thread that writes the relay's ban requests and keeps the board's view of the bans fresh.
    private var banThreadStarted = false
    private var crowdsecStarted = false

    /// Throws when the kernel refuses the relay threads' descriptors (epoll, eventfd) or threads.
    init(
        configPath: String, logger: Logger, notifier: SystemdNotifier, initialHealth: HealthConfiguration? = nil,
        inherited: InheritedSockets = InheritedSockets(), predecessor: CInt? = nil
    ) throws(SystemCallError) {
        self.inherited = inherited
        self.predecessor = predecessor
        self.store = SocketStore(notifier: notifier)
        self.initialHealth = initialHealth
        self.configPath = configPath
        self.logger = logger
        self.notifier = notifier
        self.parts = try AgentParts(logger: logger)
        self.listeners = ListenerSet(
            relay: parts.relay, logger: logger, metrics: parts.metrics, budget: parts.budget, inherited: inherited, store: store,
            banBoard: parts.banBoard
        )
    }

    /// The steps every reload runs, in order.
    private var steps: [any ReloadStep] { [listeners, parts.firewall] }

    /// How often the firewall is verified (nil when it is not enabled).
    var firewallCheckInterval: Duration? {
        guard let configuration = current?.configuration else { return nil }
        if let firewall = configuration.firewall, firewall.enabled { return firewall.checkInterval }
        return configuration.bans.enabled ? (configuration.firewall?.checkInterval ?? .seconds(30)) : nil
    }

    /// Applies the first configuration: the firewall first, then the names are resolved, then the listeners
    /// bound. Throws when the firewall cannot be applied or a listener cannot be bound; a name that does not
    /// resolve only leaves its server down (and is tried again in the background).
    func start(_ configuration: TailgateConfiguration, bytes: [UInt8]) async throws {
        for warning in configuration.warnings { logger.warning("\(warning)") }
        applyConnectionLimit(configuration)
        parts.relay.spreadAcceptsOverAllThreads(configuration.acceptSpread == .all)
        try await parts.firewall.applyFirst(configuration)
        let names = await resolve(configuration, previous: ResolvedNames())
        for warning in ProxyPlan.unresolvedWarnings(configuration, names: names, file: configPath) { logger.warning("\(warning)") }
        let plan = try ProxyPlan.make(
            configuration, file: configPath, generation: 1, names: names, usage: parts.usage, health: parts.healthBoard, metrics: parts.metrics
        )
        do {
            try await ReloadTransaction.run(steps, plan: plan)
        } catch {
            throw error.underlying
        }
        let closed = await listeners.closeUnclaimedInherited()
        if inherited.passedIn > 0 {
            // (The health endpoint's sockets are claimed by its own service, which may not have run yet.)
            logger.info("took over listening sockets", metadata: [
                "from": .string(predecessor != nil ? "the previous process (upgrade)" : "systemd (LISTEN_FDS)"),
                "passed_in": .stringConvertible(inherited.passedIn), "closed_unconfigured": .stringConvertible(closed),
            ])
        }
        self.plan = plan
        parts.checker.configure(configuration, plan: plan)
        configureBans(configuration)
        let generation = ConfigurationGeneration(number: 1, hash: ContentHash.sha256Hex(bytes), configuration: configuration)
        current = generation
        parts.ringBells()
        logger.info("ready", metadata: [
            "config": .string(configPath), "generation": .stringConvertible(1), "hash": .string(generation.shortHash),
            "listeners": .stringConvertible(configuration.listeners.count), "upstreams": .stringConvertible(configuration.upstreams.count),
            "max_connections": .stringConvertible(parts.budget.limit), "open_file_limit": .stringConvertible(parts.openFileLimit),
        ])
        if let predecessor {
            // Ready on the predecessor's sockets: it makes this process the main one, then drains.
            self.predecessor = nil
            _ = try? await loader.runIfActive { UpgradeHandOver.reportReady(predecessor) }
        }
        notifier.send("READY=1\nSTATUS=\(await statusLine())\nMAINPID=\(getpid())")
        StartupPages.release()
        if life.started() {
            // Not awaited: start returns now, so that a stop request is heard while the reload reads the file.
            Task { await self.reloadWhileRunning() }
        }
    }

    /// SIGHUP: re-reads the file and applies it as one transaction, or changes nothing. One reload runs at a
    /// time; SIGHUPs during it make one more follow it (the file may have changed since it was read).
    @discardableResult
    func reload() async -> ReloadReport {
        let serving = current?.number ?? 0
        switch life.hangUp() {
        case .refused(let first):
            logger.log(level: first ? .warning : .debug, "reload ignored: the agent is stopping")
            return ReloadReport(succeeded: false, generation: serving, errors: ["stopping"], duration: .zero)
        case .afterStart:
            logger.info("reload requested while starting; it follows once ready")
            return ReloadReport(succeeded: false, generation: 0, errors: ["starting"], duration: .zero)
        case .queued:
            return ReloadReport(succeeded: false, generation: serving, errors: ["queued"], duration: .zero)
        case .reloadNow:
            return await reloadWhileRunning()
        }
    }

    /// Runs reloads while `life` says one is due (it is `.reloading` when called).
    private func reloadWhileRunning() async -> ReloadReport {
        var report = ReloadReport(succeeded: false, generation: current?.number ?? 0, errors: ["starting"], duration: .zero)
        repeat {
            guard let previous = current else { break }
            report = await reloadOnce(previous: previous)
        } while life.reloadFinished()
        return report
    }

    private func reloadOnce(previous: ConfigurationGeneration) async -> ReloadReport {
        let started = ContinuousClock.now
        notifier.send("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())\nSTATUS=reloading \(configPath)")
        logger.info("reloading", metadata: ["config": .string(configPath)])
        let next = previous.number + 1
        var errors: [String] = []
        do throws(ConfigurationErrors) {
            // Reading the file and resolving names block (a slow DNS server, a FIFO with no writer): done off
            // the actor, so that SIGTERM, the health endpoint and the watchdog are served meanwhile.
            let (configuration, bytes, plan) = try await Self.load(
                configPath, generation: next, names: self.plan?.names ?? ResolvedNames(), parts: parts, on: loader
            ).get()
            for warning in configuration.warnings { logger.warning("reload: \(warning)") }
            for warning in ProxyPlan.unresolvedWarnings(configuration, names: plan.names, file: configPath) { logger.warning("reload: \(warning)") }
            guard !life.isStopping else {
                logger.info("reload abandoned: the agent is stopping")
                return ReloadReport(succeeded: false, generation: previous.number, errors: ["stopping"], duration: ContinuousClock.now - started)
            }
            do {
                try await ReloadTransaction.run(steps, plan: plan)
                lastBindFailure = nil
                applyConnectionLimit(configuration)
                parts.relay.spreadAcceptsOverAllThreads(configuration.acceptSpread == .all)
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
            parts.healthBoard.reviseFailures(plan.pools.mapValues(\.failTimeout))
            self.plan = plan
            parts.checker.configure(configuration, plan: plan)
            configureBans(configuration)
            parts.ringBells()
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
        history.last = report
        history.lastTime = Timestamp.now()
        history.attempts += 1
        if errors.isEmpty {
            logger.info("reloaded", metadata: [
                "generation": .stringConvertible(serving), "hash": .string(current?.shortHash ?? ""),
                "duration_ms": .stringConvertible(duration.wholeMilliseconds),
            ])
        } else {
            history.failures += 1
            for error in errors { logger.error("reload: \(error)") }
            logger.error("reload failed; still serving the previous configuration", metadata: [
                "generation": .stringConvertible(serving), "errors": .stringConvertible(errors.count),
            ])
        }
        notifier.send("READY=1\nSTATUS=\(await statusLine(reloading: false))")
        return report
    }

    /// The file read and turned into a plan on the loader thread, not a thread of Swift's small cooperative
    /// pool (one thread on a 1-CPU host), which a blocked read would take from every service.
    private static func load(
        _ path: String, generation: Int, names previous: ResolvedNames, parts: AgentParts, on loader: NIOThreadPool
    ) async -> Result<(TailgateConfiguration, [UInt8], ProxyPlan), ConfigurationErrors> {
        let result = try? await loader.runIfActive { () -> Result<(TailgateConfiguration, [UInt8], ProxyPlan), ConfigurationErrors> in
            do throws(ConfigurationErrors) {
                let (configuration, bytes) = try ConfigurationFile.load(path: path)
                let names = ResolvedNames.resolve(configuration, previous: previous)
                let plan = try ProxyPlan.make(
                    configuration, file: path, generation: generation, names: names, usage: parts.usage, health: parts.healthBoard,
                    metrics: parts.metrics
                )
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
    /// Hands `[bans]` and who is never banned to the ban desk, and opens the control socket the first time
    /// bans are enabled (its path follows a restart, not a reload, as `[health] listen` does).
    private func configureBans(_ configuration: TailgateConfiguration) {
        parts.bans.configure(configuration)
        parts.crowdsec.configure(configuration.bans.enabled ? configuration.bans.crowdsec : nil)
        guard configuration.bans.enabled else {
            parts.banBoard.publish(AddressSet())
            return
        }
        if configuration.bans.crowdsec != nil, !crowdsecStarted {
            crowdsecStarted = true
            parts.crowdsec.start(desk: parts.bans, board: parts.banBoard, logger: logger)
        }
        if !banThreadStarted {
            banThreadStarted = true
            let (desk, board, logger) = (parts.bans, parts.banBoard, logger)
            NamedThread.startDetached(name: "bans") { BanDesk.serve(board, desk: desk, logger: logger) }
        }
        if let control {
            if control.path != configuration.bans.controlSocket {
                logger.warning("[bans] control_socket changed; the control socket stays where it is until tailgate restarts", metadata: ["listening": .string(control.path)])
            }
            return
        }
        do {
            control = try ControlSocket(path: configuration.bans.controlSocket, desk: parts.bans, logger: logger)
            logger.info("control socket listening", metadata: ["path": .string(configuration.bans.controlSocket)])
        } catch {
            logger.warning("control socket not available; `tailgate ban` and fail2ban's action cannot reach this agent", metadata: ["error": .string(error.description)])
        }
    }

    private func applyConnectionLimit(_ configuration: TailgateConfiguration) {
        let limit = configuration.maxConnections ?? ConnectionBudget.defaultLimit(openFileLimit: parts.openFileLimit)
        if let configured = configuration.maxConnections, configured > ConnectionBudget.defaultLimit(openFileLimit: parts.openFileLimit), configured != parts.budget.limit {
            logger.warning("[global] max_connections is more than the open-file limit can carry; past about a third of it, accepts and upstream connects fail for want of descriptors (raise LimitNOFILE)", metadata: [
                "max_connections": .stringConvertible(configured), "open_file_limit": .stringConvertible(parts.openFileLimit),
                "carried": .stringConvertible(ConnectionBudget.defaultLimit(openFileLimit: parts.openFileLimit)),
            ])
        }
        parts.budget.limit = limit
    }

    /// Tells the usage ledger which servers (resolved addresses, so named servers count too) left the
    /// configuration and which came back.
    private func announceServerChanges(from old: ProxyPlan?, to new: ProxyPlan) {
        func addresses(_ plan: ProxyPlan?) -> Set<SocketAddress> {
            Set(plan?.pools.values.flatMap(\.allServers) ?? [])
        }
        let before = addresses(old), after = addresses(new)
        parts.usage.serversChanged(left: before.subtracting(after), present: after)
    }

    /// Resolves `configuration`'s names on the loader thread (getaddrinfo blocks, for seconds when DNS is
    /// unreachable), so the actor keeps serving stop requests and /status meanwhile.
    private func resolve(_ configuration: TailgateConfiguration, previous: ResolvedNames) async -> ResolvedNames {
        guard !ResolvedNames.names(in: configuration).isEmpty else { return ResolvedNames() }
        return (try? await loader.runIfActive { ResolvedNames.resolve(configuration, previous: previous) }) ?? previous
    }

    /// When the names should be resolved again: nil when the configuration has none; 2 s while one has no
    /// address yet; else `resolve_interval`.
    var nextResolution: Duration? {
        guard let plan, !ResolvedNames.names(in: plan.configuration).isEmpty else { return nil }
        return plan.names.unresolved.isEmpty ? plan.configuration.resolveInterval : min(.seconds(2), plan.configuration.resolveInterval)
    }

    /// Resolves the names of the serving configuration again; when an address changed (or a name resolved
    /// for the first time), publishes a plan with the new addresses to the listeners, as a reload would,
    /// without touching binds or the firewall. A reload meanwhile makes the answer moot.
    func resolveAgain() async {
        guard let before = plan, !life.isStopping else { return }
        let names = await resolve(before.configuration, previous: before.names)
        guard let now = plan, now.generation == before.generation, now.names == before.names, !life.isStopping else { return }
        for name in ResolvedNames.names(in: now.configuration) where names[name] != now.names[name] {
            let old = now.names[name]?.endpointDescription ?? "none"
            logger.info("upstream server name resolved to a new address", metadata: [
                "name": .string(name.description), "was": .string(old), "now": .string(names[name]?.endpointDescription ?? "none"),
            ])
        }
        for name in names.unresolved where now.names.failures[name] != names.failures[name] {
            logger.warning("upstream server name still does not resolve; its server stays down", metadata: [
                "name": .string(name.description), "error": .string(names.failures[name] ?? ""),
            ])
        }
        guard names.addresses != now.names.addresses else {
            self.plan = now.with(names: names)
            return
        }
        guard let next = now.renamed(names, usage: parts.usage, health: parts.healthBoard, metrics: parts.metrics) else { return }
        await listeners.publish(next)
        announceServerChanges(from: now, to: next)
        self.plan = next
        parts.checker.configure(next.configuration, plan: next)
        parts.checkerBell.ring()
    }

    /// Closes the health sockets passed in at start that `[health] listen` no longer names; they leave the store.
    nonisolated func closeUnclaimedHealthSockets() {
        for socket in inherited.closeUnclaimed(.health) { store.forget(socket.name) }
    }

    /// Keeps a duplicate of a health endpoint socket for the store and the next hand-over.
    func keepHealthSocket(_ descriptor: CInt, address: SocketAddress) {
        healthSockets.append((InheritedSockets.name(.health, address), descriptor))
        store.keep(.health, address, descriptor)
    }

    /// SIGUSR2: hands the service over to the binary on disk (`UpgradeHandOver`). True when the new process
    /// is the main one now, and this one must drain and stop; false when it failed (and this one serves on).
    func handOver() async -> Bool {
        guard current != nil, !life.isStopping, !handingOver else {
            logger.warning("upgrade request ignored: the agent is \(handingOver ? "already handing over" : current == nil ? "starting" : "stopping")")
            return false
        }
        handingOver = true
        defer { handingOver = false }
        let sockets = await listeners.handOverSockets + healthSockets
        let (configPath, logger) = (configPath, logger)
        let waiter = NIOThreadPool(numberOfThreads: 1)
        waiter.start()
        defer { waiter.shutdownGracefully { _ in } }
        // A thread of its own: waiting for the new process may take as long as its start.
        let result = try? await waiter.runIfActive { UpgradeHandOver.start(configPath: configPath, sockets: sockets, logger: logger) }
        guard let (outcome, channel) = result, case .ready(let pid) = outcome else {
            if case .failed(let reason)? = result?.0 {
                logger.error("upgrade failed; still serving", metadata: ["error": .string(reason)])
            }
            return false
        }
        notifier.send("MAINPID=\(pid)\nSTATUS=handed over to process \(pid); draining")
        notifier.silence()
        parts.firewall.standDown()
        UpgradeHandOver.confirm(channel)
        logger.info("upgrade: handed over to the new process; draining", metadata: ["pid": .stringConvertible(pid)])
        return true
    }

    /// SIGTERM/SIGINT: stop accepting, let connections finish up to drain_timeout (or a second signal), close the rest.
    func drainAndStop() async {
        life.stop()
        let timeout = current?.configuration.drainTimeout ?? ConfigurationDefaults.drainTimeout
        notifier.send("STOPPING=1\nSTATUS=draining connections")
        await listeners.closeAll()
        let open = await listeners.openConnections
        logger.info("stopping: no longer accepting; draining connections", metadata: [
            "connections": .stringConvertible(open),
            "drain_timeout_ms": .stringConvertible(timeout.wholeMilliseconds),
        ])
        let deadline = ContinuousClock.now + timeout
        while await listeners.openConnections > 0, ContinuousClock.now < deadline, !life.abortRequested {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let remaining = await listeners.openConnections
        if remaining > 0 {
            logger.warning(life.abortRequested ? "second stop signal: closing remaining connections" : "drain_timeout reached; closing remaining connections",
                           metadata: ["connections": .stringConvertible(remaining)])
            await listeners.closeConnections()
            let closeDeadline = ContinuousClock.now + .seconds(2)
            while await listeners.openConnections > 0, ContinuousClock.now < closeDeadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        parts.relay.shutdown()
        logger.info("stopped")
    }

    func noteHealthBindFailure(_ text: String) {
        healthBindFailure = text
    }

    /// Why /readyz answers 503; empty when ready.
    func notReadyReasons() -> [String] {
        var reasons: [String] = []
        if current == nil { reasons.append("starting: configuration not applied yet") }
        if life.isStopping { reasons.append("stopping: draining connections") }
        if let lastBindFailure { reasons.append("a listener cannot be bound (\(lastBindFailure)); still serving generation \(current?.number ?? 0)") }
        if let healthBindFailure { reasons.append("health endpoint cannot be bound: \(healthBindFailure)") }
        if let plan, !plan.names.unresolved.isEmpty {
            let names = plan.names.unresolved.map { "\($0) (\(plan.names.failures[$0] ?? "no address"))" }
            reasons.append("upstream server names do not resolve yet, their servers are down: " + names.joined(separator: ", "))
        }
        parts.firewall.refreshInSync()
        let firewall = parts.firewall.snapshot
        if firewall.enabled, !firewall.inSync {
            reasons.append("firewall out of step with the configuration" + (firewall.lastError.map { ": \($0)" } ?? ""))
        }
        return reasons
    }

    /// A second SIGTERM/SIGINT while draining.
    func abortDrain() {
        life.abort()
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
        await statusLine(reloading: life.isReloading)
    }

    /// The status line as of a reload under way or not (READY=1 after a reload says it is over, though
    /// another may follow at once).
    private func statusLine(reloading: Bool) async -> String {
        let connections = await listeners.openConnections
        guard let current else { return "starting" }
        if life.isStopping { return "draining connections: \(connections) left" }
        let line = "generation \(current.number) (\(current.shortHash)), \(connections) connections"
        if reloading { return "reloading \(configPath), still serving \(line)" }
        guard let lastReload = history.last, !lastReload.succeeded else { return line }
        return "reload failed (\(lastReload.errors.count) errors), still serving \(line)"
    }
}
