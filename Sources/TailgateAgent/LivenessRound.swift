import NIOCore
import Synchronization
import TailgateProxy

/// One round of the liveness check that `/healthz` and the systemd watchdog share: a no-op task to each
/// SwiftNIO event loop (the health endpoint's) and a ping to each relay thread. Every one must answer: a thread that is
/// blocked (in a system call, on a lock, stopped by a debugger) cannot, and the agent is then not healthy,
/// however well the other threads run.
final class LivenessRound: Sendable {
    private let loopsAnswered = Atomic<Int>(0)
    private let loopCount: Int
    private let relay: SpliceRelayEngine
    private let sent: NIODeadline

    /// Sends the round's pings.
    init(loops: any EventLoopGroup, relay: SpliceRelayEngine) {
        self.relay = relay
        self.sent = relay.ping()
        let all = Array(loops.makeIterator())
        self.loopCount = all.count
        for loop in all {
            loop.execute { self.loopsAnswered.add(1, ordering: .relaxed) }
        }
    }

    /// The threads that have not answered yet: relay threads by name ("splice-1"), event loops together.
    var notAnswering: [String] {
        var silent = relay.threadsNotAnswering(since: sent)
        let answered = loopsAnswered.load(ordering: .relaxed)
        if answered < loopCount { silent.append("\(loopCount - answered) of \(loopCount) event loops") }
        return silent
    }

    /// Waits up to `limit` for every answer; returns who is still silent then (empty: all alive).
    func wait(upTo limit: Duration) async -> [String] {
        let deadline = ContinuousClock.now + limit
        while true {
            let silent = notAnswering
            if silent.isEmpty || ContinuousClock.now >= deadline { return silent }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
