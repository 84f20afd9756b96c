import CTailgateLinux
import Glibc
import NIOCore
import Synchronization
import TailgateSystem

/// Relays connections with splice(2): bytes go socket → pipe → socket inside the kernel and never enter the
/// agent's memory, and an idle connection holds no buffer at all (HAProxy's technique).
///
/// Each relay thread runs its own epoll loop and serves the connections it accepted from start to end:
/// the PROXY header and ClientHello, routing, the connect to the upstream, the relay. The listening sockets
/// are shared; how many threads accept from them follows the load (`AcceptSpread`).
///
/// The parts, from the inside out: `RelayDirection` and `SessionStateMachine` decide (pure, tested without
/// sockets); `SpliceSession` performs what they decide (the I/O layer); `SpliceLoop` (one per thread),
/// `SpliceWorker` (its thread and inbox) and this engine run the sessions.
public final class SpliceRelayEngine: Sendable {
    private let workers: [SpliceWorker]
    private let spread: AcceptSpread

    /// Starts `threads` relay threads. Throws when the kernel refuses an epoll or eventfd descriptor.
    public convenience init(threads: Int) throws(SystemCallError) {
        try self.init(threads: threads, spread: .standard)
    }

    /// With the accept-spread thresholds given (tests make them eager).
    init(threads: Int, spread thresholds: AcceptSpread.Thresholds) throws(SystemCallError) {
        ProcessSignals.ignoreBrokenPipes()
        let spread = AcceptSpread(threadCount: max(1, threads), thresholds: thresholds)
        var workers: [SpliceWorker] = []
        for index in 0..<spread.threadCount {
            workers.append(try SpliceWorker(index: index, spread: spread))
        }
        spread.attach(workers)
        self.workers = workers
        self.spread = spread
    }

    /// How many relay threads accept new connections now.
    public var acceptingThreads: Int { spread.acceptingThreads }

    /// `[global] accept_spread`: every thread accepts (`all`), or as many as the load needs.
    public func spreadAcceptsOverAllThreads(_ all: Bool) {
        spread.setSpreadsAll(all)
    }

    /// Starts accepting on `descriptor` in every thread that accepts (the kernel wakes one of them per connection).
    func listen(_ descriptor: CInt, for socket: BoundSocket) {
        for worker in workers { worker.post(.listen(descriptor, socket)) }
    }

    /// Stops accepting on `descriptor` in every thread; returns once none of them watches it any more,
    /// so that the caller may close it.
    func stopListening(_ descriptor: CInt) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let countdown = SpliceCountdown(count: workers.count, continuation: continuation)
            for worker in workers { worker.post(.unlisten(descriptor, countdown)) }
        }
    }

    /// Asks every relay thread to show that it runs: each answers through its inbox, the way a connection's
    /// work reaches it, so a thread that is blocked (in a system call, a lock, a debugger) cannot answer.
    /// Returns when the pings were sent, for `threadsNotAnswering(since:)`.
    public func ping() -> NIODeadline {
        let sent = NIODeadline.now()
        for worker in workers { worker.post(.ping) }
        return sent
    }

    /// The names of the relay threads that have not answered the ping sent at `sent`.
    public func threadsNotAnswering(since sent: NIODeadline) -> [String] {
        workers.filter { !$0.hasAnswered(since: sent) }.map(\.name)
    }

    /// Closes whatever is still relayed and stops the threads; waits until they have exited.
    public func shutdown() {
        spread.freeze()
        for worker in workers { worker.post(.stop) }
        for worker in workers { worker.join() }
    }
}

/// Resumes a continuation once every relay thread has answered.
final class SpliceCountdown: Sendable {
    private let state: Mutex<(left: Int, continuation: CheckedContinuation<Void, Never>?)>

    init(count: Int, continuation: CheckedContinuation<Void, Never>) {
        state = Mutex((count, continuation))
    }

    func done() {
        let finished = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.left -= 1
            guard state.left == 0 else { return nil }
            defer { state.continuation = nil }
            return state.continuation
        }
        finished?.resume()
    }
}
