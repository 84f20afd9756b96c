import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import TailgateConfig
import TailgateProxy
import TailgateSystem
import UnixSignals


/// Entry points used by the `tailgate` executable.
public enum TailgateMain {
    /// `tailgate check`: loads and validates; returns the error text (nil when the file is good) and the
    /// warnings of a good file.
    public static func check(configPath: String) -> (errors: String?, warnings: [String]) {
        let configuration: TailgateConfiguration
        do {
            (configuration, _) = try ConfigurationFile.load(path: configPath)
        } catch {
            return (error.description, [])
        }
        // A name that does not resolve is a warning, not an error: the agent starts without it (the unit's
        // ExecStartPre runs this at boot, maybe before the tailnet's DNS is up).
        let names = ResolvedNames.resolve(configuration, previous: ResolvedNames())
        let warnings = configuration.warnings + ProxyPlan.unresolvedWarnings(configuration, names: names, file: configPath)
        do {
            _ = try ProxyPlan.make(
                configuration, file: configPath, generation: 0, names: names, usage: ServerUsage(logger: Logger(label: "check")),
                metrics: ProxyMetrics(registry: .init(), createsSeriesAhead: false)
            )
            return (nil, warnings.map(\.description))
        } catch {
            // Errors and warnings in file order, in one pass.
            return (ConfigurationErrors(error.errors + warnings).description, [])
        }
    }

    /// `tailgate run`: serves until SIGTERM or SIGINT, reloading on SIGHUP.
    public static func run(configPath: String) async throws {
        // Whatever is still queued for standard error goes out before the process ends, however `run` ends
        // (a refused file included), unless standard error does not take it within a second.
        defer { LogOutput.standardError.flush(milliseconds: 1_000) }
        // SIGHUP is trapped before the file is read (which may wait on DNS): its default action would end the
        // process. SIGTERM and SIGINT keep theirs until the agent can drain, so a start stuck there still stops.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let upgrades = await UnixSignalsSequence(trapping: .sigusr2)
        // Taken before anything else opens a descriptor or the environment is passed on.
        let inherited = InheritedSockets.fromEnvironment()
        let predecessor = UpgradeHandOver.channelFromEnvironment()
        _ = UpgradeHandOver.executablePath
        let loaded: (TailgateConfiguration, bytes: [UInt8])
        do {
            loaded = try ConfigurationFile.load(path: configPath)
        } catch {
            bootstrapLogging(LogConfiguration())
            let logger = Logger(label: "tailgate")
            for item in error.errors { logger.error("\(item)") }
            throw StartupError.invalidConfiguration(count: error.errors.count)
        }
        bootstrapLogging(loaded.0.log)
        let logger = Logger(label: "tailgate")
        let notifier = SystemdNotifier()
        for problem in inherited.problems { logger.warning("passed-in socket: \(problem)") }
        let supervisor: Supervisor
        do {
            supervisor = try Supervisor(
                configPath: configPath, logger: logger, notifier: notifier, initialHealth: loaded.0.health,
                inherited: inherited, predecessor: predecessor
            )
        } catch {
            logger.error("cannot start the relay threads: \(error)")
            throw error
        }
        // Metrics that libraries record through swift-metrics land in the same registry as tailgate's own.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: supervisor.parts.registry))
        let (stopRequests, stop) = AsyncStream.makeStream(of: Void.self)
        let stops = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        // Shut down in reverse order: the proxy drains first, signals stay handled until it is done.
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: SignalService(supervisor: supervisor, stop: stop, logger: logger, hangups: hangups, stops: stops, upgrades: upgrades)),
                .init(service: NotifyService(supervisor: supervisor, notifier: notifier, logger: logger)),
                .init(service: FirewallService(supervisor: supervisor)),
                .init(service: CheckerService(supervisor: supervisor)),
                .init(service: ResolverService(supervisor: supervisor)),
                .init(service: HealthService(supervisor: supervisor, logger: logger)),
                .init(
                    service: ProxyService(supervisor: supervisor, initial: loaded, stopRequests: stopRequests),
                    successTerminationBehavior: .gracefullyShutdownGroup
                ),
            ],
            logger: Logger(label: "tailgate.lifecycle", factory: { _ in SwiftLogNoOpLogHandler() })
        ))
        do {
            try await group.run()
        } catch {
            logger.error("\(error)")
            try? await supervisor.parts.healthLoops.shutdownGracefully()
            throw error
        }
        try? await supervisor.parts.healthLoops.shutdownGracefully()
    }

    /// Runs `work` (the agent) from the synchronous `main` at default priority (see `DefaultPriority`);
    /// false when it threw.
    public static func runAtDefaultPriority(_ work: @escaping @Sendable () async throws -> Void) -> Bool {
        DefaultPriority.run(work)
    }

    /// From here on no thread but the log writer waits for standard error (see `LogOutput`).
    private static func bootstrapLogging(_ configuration: LogConfiguration) {
        LogSettings.shared.apply(configuration)
        LoggingSystem.bootstrap { label in LineLogHandler(label: label) }
        LogOutput.standardError.describeLoss { LineLogHandler.lossLine(dropped: $0) }
        LogOutput.standardError.startWriter()
    }

    /// Writes text to stderr (the executable has no Foundation): through the log writer once `run` started it.
    public static func writeToStandardError(_ text: String) {
        LogOutput.standardError.write(Array(text.utf8), lines: 1)
        LogOutput.standardError.flush(milliseconds: 1_000)
    }
}

/// Why `run` did not start.
public enum StartupError: Error, CustomStringConvertible {
    case invalidConfiguration(count: Int)

    public var description: String {
        switch self {
        case .invalidConfiguration(let count): return "configuration has \(count) error(s); not starting"
        }
    }
}
