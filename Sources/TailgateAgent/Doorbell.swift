import ServiceLifecycle
import Synchronization

/// Lets a background service sleep until its next deadline, or until what it works from has changed
/// (`ring`), whichever comes first, instead of waking on a short period to look. An idle agent then has no
/// reason to be scheduled at all (a poll would wake the process many times a second for nothing). One waiter
/// at a time.
final class Doorbell: Sendable {
    private struct State {
        /// Rung while nobody waited: the next wait returns at once.
        var rung = false
        var waiter: CheckedContinuation<Bool, Never>?
        var timer: Task<Void, Never>?
        /// Tells the current wait's timer from an earlier one that fired late.
        var generation = 0
    }

    private let state = Mutex(State())

    /// Wakes the waiter now, or makes the next wait return at once.
    func ring() {
        let woken: (CheckedContinuation<Bool, Never>, Task<Void, Never>?)? = state.withLock { state in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            defer { (state.waiter, state.timer) = (nil, nil) }
            return (waiter, state.timer)
        }
        woken?.1?.cancel()
        woken?.0.resume(returning: true)
    }

    /// Runs `work` each time `interval` (asked anew after every wait; nil: no deadline) passes without a ring,
    /// until graceful shutdown, which rings the bell to end the wait at once. A ring (a new configuration) only
    /// makes it ask for the interval again.
    func serveUntilShutdown(every interval: @escaping @Sendable () async -> Duration?, _ work: @escaping @Sendable () async -> Void) async {
        await withGracefulShutdownHandler {
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                let period = await interval()
                let woken = await wait(until: period.map { ContinuousClock.now + $0 })
                if !woken, !Task.isShuttingDownGracefully { await work() }
            }
        } onGracefulShutdown: {
            self.ring()
        }
    }

    /// Returns at `deadline` (false), or earlier when rung or when the task is cancelled (true). With no
    /// deadline, only a ring or cancellation ends the wait.
    @discardableResult
    func wait(until deadline: ContinuousClock.Instant?) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let rungAlready: Bool = state.withLock { state in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    state.generation += 1
                    state.waiter = continuation
                    if let deadline {
                        state.timer = Task { [generation = state.generation] in
                            try? await Task.sleep(until: deadline, clock: .continuous)
                            self.expire(generation)
                        }
                    }
                    return false
                }
                if rungAlready { continuation.resume(returning: true) }
            }
        } onCancel: {
            ring()
        }
    }

    private func expire(_ generation: Int) {
        let waiter: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard state.generation == generation, let waiter = state.waiter else { return nil }
            (state.waiter, state.timer) = (nil, nil)
            return waiter
        }
        waiter?.resume(returning: false)
    }
}
