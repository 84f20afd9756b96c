import Logging
import ServiceLifecycle
import TailgateConfig
import UnixSignals

/// The proxy as a service: starts the first configuration, waits for a stop request, then drains.
struct ProxyService: Service {
    let supervisor: Supervisor
    let initial: (TailgateConfiguration, bytes: [UInt8])
    let stopRequests: AsyncStream<Void>

    func run() async throws {
        try await supervisor.start(initial.0, bytes: initial.bytes)
        for await _ in stopRequests.cancelOnGracefulShutdown() { break }
        await supervisor.drainAndStop()
    }
}

/// The one owner of SIGHUP, SIGTERM and SIGINT: HUP reloads; the first TERM/INT starts the drain,
/// a second one cuts it short.
struct SignalService: Service {
    let supervisor: Supervisor
    let stop: AsyncStream<Void>.Continuation
    let logger: Logger
    /// Trapped before any service starts: READY=1 may be answered by a SIGHUP at once (systemctl reload),
    /// and an untrapped SIGHUP would end the process. SIGHUP is trapped even before the file is first read.
    let hangups: UnixSignalsSequence
    let stops: UnixSignalsSequence
    /// SIGUSR2: hand over to the binary on disk (`UpgradeHandOver`), then drain.
    let upgrades: UnixSignalsSequence

    func run() async throws {
        let (supervisor, stop, logger, hangups, stops, upgrades) = (supervisor, stop, logger, hangups, stops, upgrades)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in upgrades.cancelOnGracefulShutdown() {
                    Task {
                        if await supervisor.handOver() { stop.yield() }
                    }
                }
            }
            group.addTask {
                for await _ in hangups.cancelOnGracefulShutdown() {
                    // Not awaited: a reload that blocks (a slow DNS answer) must not hold back the next signal.
                    Task { await supervisor.reload() }
                }
            }
            group.addTask {
                var stopRequested = false
                for await signal in stops.cancelOnGracefulShutdown() {
                    if stopRequested {
                        await supervisor.abortDrain()
                    } else {
                        stopRequested = true
                        logger.info("stop requested", metadata: ["signal": .string("\(signal)")])
                        stop.yield()
                    }
                }
            }
        }
    }
}

/// Verifies tailgate's nftables table every check_interval and repairs drift. Sleeps between checks, and
/// for good while the firewall is not enabled; an applied configuration wakes it to look again.
struct FirewallService: Service {
    let supervisor: Supervisor

    func run() async throws {
        let supervisor = supervisor
        await supervisor.parts.firewallBell.serveUntilShutdown(every: { await supervisor.firewallCheckInterval }) {
            supervisor.parts.firewall.verifyAndRepair()
        }
    }
}

/// Resolves upstream server names again: every 2 s while one has no address, else every resolve_interval.
/// Sleeps for good while the configuration names no server by name; an applied configuration wakes it.
struct ResolverService: Service {
    let supervisor: Supervisor

    func run() async throws {
        let supervisor = supervisor
        await supervisor.parts.resolverBell.serveUntilShutdown(every: { await supervisor.nextResolution }) {
            await supervisor.resolveAgain()
        }
    }
}

/// Runs the active upstream checks, each upstream at its own check_interval. Sleeps until the next one is
/// due, and for good while no upstream has checks; an applied configuration wakes it to plan again.
struct CheckerService: Service {
    let supervisor: Supervisor

    func run() async throws {
        let bell = supervisor.parts.checkerBell
        await withGracefulShutdownHandler {
            var due: [String: (at: ContinuousClock.Instant, interval: Duration)] = [:]
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                guard let plan = await supervisor.plan else {
                    await bell.wait(until: nil)
                    continue
                }
                let now = ContinuousClock.now
                let upstreams = plan.configuration.upstreams
                // After a reload, upstreams that are new, or whose checks were added or changed interval, are
                // due now; those gone or without checks are forgotten.
                due = due.filter { name, next in
                    upstreams[name].map { $0.check.kind != .none && $0.check.interval == next.interval } ?? false
                }
                var dueNow = plan.configuration
                dueNow.upstreams = upstreams.filter { name, upstream in
                    upstream.check.kind != .none && (due[name]?.at ?? now) <= now
                }
                for (name, upstream) in dueNow.upstreams {
                    due[name] = (now + upstream.check.interval, upstream.check.interval)
                }
                if !dueNow.upstreams.isEmpty {
                    await supervisor.parts.checker.checkAll(dueNow, plan: plan)
                }
                await bell.wait(until: due.values.map(\.at).min())
            }
        } onGracefulShutdown: {
            bell.ring()
        }
        await supervisor.parts.checker.shutdown()
    }
}

/// Sends WATCHDOG=1 at half of WATCHDOG_USEC, only while every event loop and relay thread answers
/// (`LivenessRound`), and refreshes STATUS=.
struct NotifyService: Service {
    let supervisor: Supervisor
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        guard notifier.isEnabled else {
            try? await gracefulShutdown()
            return
        }
        let watchdog = SystemdNotifier.watchdogInterval()
        let period = min(watchdog.map { $0 / 2 } ?? .seconds(5), .seconds(5))
        var round = LivenessRound(loops: supervisor.parts.healthLoops, relay: supervisor.parts.relay)
        var silentBefore: [String] = []
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            // The proxy has drained when this service is asked to stop (services stop in reverse order):
            // the process must exit then, not at the next tick.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: period) }
            if Task.isShuttingDownGracefully { break }
            // Every thread must have answered the round sent one period ago; a stuck one withholds the watchdog.
            let silent = round.notAnswering
            if silent != silentBefore {
                if silent.isEmpty {
                    logger.info("every relay thread and event loop answers again")
                } else {
                    logger.error("not answering; withholding the systemd watchdog", metadata: [
                        "threads": .string(silent.joined(separator: ",")),
                    ])
                }
                silentBefore = silent
            }
            if watchdog != nil, silent.isEmpty {
                notifier.send("WATCHDOG=1")
            }
            round = LivenessRound(loops: supervisor.parts.healthLoops, relay: supervisor.parts.relay)
            notifier.send("STATUS=\(await supervisor.statusLine())")
        }
    }
}
