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

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup, .sigterm, .sigint)
        var stopRequested = false
        for await signal in signals.cancelOnGracefulShutdown() {
            switch signal {
            case .sighup:
                await supervisor.reload()
            default:
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

/// Sends WATCHDOG=1 at half of WATCHDOG_USEC, only while every event loop answers, and refreshes STATUS=.
struct NotifyService: Service {
    let supervisor: Supervisor
    let notifier: SystemdNotifier

    func run() async throws {
        guard notifier.isEnabled else {
            try? await gracefulShutdown()
            return
        }
        let watchdog = SystemdNotifier.watchdogInterval()
        let period = min(watchdog.map { $0 / 2 } ?? .seconds(5), .seconds(5))
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: period)
            if watchdog != nil, await eventLoopsRespond(within: period) {
                notifier.send("WATCHDOG=1")
            }
            notifier.send("STATUS=\(await supervisor.statusLine())")
        }
    }

    private func eventLoopsRespond(within limit: Duration) async -> Bool {
        let loops = Array(supervisor.group.makeIterator())
        let deadline = NIODeadline.now() + .nanoseconds(Int64(limit.wholeMilliseconds) * 1_000_000)
        for loop in loops {
            let answered = loop.submit { true }
            let timeout = loop.scheduleTask(deadline: deadline) { false }
            guard (try? await answered.get()) == true else { return false }
            timeout.cancel()
            guard NIODeadline.now() < deadline else { return false }
        }
        return true
    }
}

import NIOCore
