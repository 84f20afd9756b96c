import Glibc
import NIOCore
import Synchronization

/// How many relay threads accept new connections: as few as the load needs, lowest-numbered first.
///
/// A connection stays on the thread that accepted it. Spreading a light load over every thread costs CPU
/// when the host's CPUs are contended: each thread sleeps and is woken more often, and the threads' shared
/// state (descriptor table, counters) moves between cores. So thread 0 accepts alone until the accepting
/// threads' load (time on a CPU plus time waiting for one, over wall time; see `schedulerTimes`) passes
/// `growAbove` on average; then the next thread joins, and so on. A thread stops accepting when the load of
/// the accepting threads would fit in one fewer at `shrinkBelow` or less; its connections stay with it.
///
/// Connections accepted while one thread sufficed would stay on it when their traffic grows (keep-alive
/// connections opened at once all land on thread 0). Thread 0 hands half of them to the least busy
/// accepting thread (`handOverTarget`, `SpliceLoop.handOverHalf`) once it is itself on a CPU
/// `handOverAbove` of the time, averaged over about a second, and that thread at most half as much.
/// docs/performance.md gives the measurements behind the thresholds.
final class AcceptSpread: Sendable {
    /// Shares of wall time, from 0 to 1 (a thread waiting for a CPU counts toward its load, so a load can
    /// pass 1).
    struct Thresholds: Sendable {
        /// The accepting threads' average load above which one more thread joins.
        var growAbove: Double
        /// The load per thread at which the accepting threads' load fits in one fewer.
        var shrinkBelow: Double
        /// The share of time on a CPU above which thread 0 hands connections over.
        var handOverAbove: Double

        /// A running agent's.
        static let standard = Thresholds(growAbove: 0.70, shrinkBelow: 0.25, handOverAbove: 0.40)
        /// Any load brings another thread in, only none lets it go, and thread 0 hands connections over
        /// every `settleTime`: joining and handing over without a busy machine (tests).
        static let eager = Thresholds(growAbove: 0, shrinkBelow: 0, handOverAbove: 0)
    }

    let thresholds: Thresholds
    /// The least time between two changes, so that the count follows the load rather than its noise.
    static let settleTime: TimeAmount = .seconds(1)

    let threadCount: Int
    private let accepting = Atomic<Int>(1)
    /// `accept_spread = "all"`: every thread accepts and `rebalance` changes nothing.
    private let spreadsAll = Atomic<Bool>(false)
    /// Set when the engine shuts down: no thread joins or leaves (nor is handed connections) any more.
    private let frozen = Atomic<Bool>(false)
    /// Each thread's recent load and time on a CPU, reported on its timer passes.
    private let loads: Mutex<[ThreadLoad]>
    private let lastChange = Mutex<NIODeadline>(.uptimeNanoseconds(0))
    private let lastHandOver = Mutex<NIODeadline>(.uptimeNanoseconds(0))
    private let workers = Mutex<[SpliceWorker]>([])

    init(threadCount: Int, thresholds: Thresholds = .standard) {
        self.threadCount = threadCount
        self.thresholds = thresholds
        self.loads = Mutex([ThreadLoad](repeating: ThreadLoad(), count: threadCount))
    }

    func worker(_ index: Int) -> SpliceWorker? {
        workers.withLock { $0.indices.contains(index) ? $0[index] : nil }
    }

    /// The threads to tell when their part changes; set once they exist.
    func attach(_ workers: [SpliceWorker]) {
        self.workers.withLock { $0 = workers }
    }

    var acceptingThreads: Int { accepting.load(ordering: .relaxed) }

    /// When `rebalance` may change the count next.
    var earliestChange: NIODeadline { lastChange.withLock { $0 } + Self.settleTime }

    /// Threads other than thread 0 accept, and may be let go.
    var othersAccept: Bool { adapting && accepting.load(ordering: .relaxed) > 1 }

    /// The count follows the load: `accept_spread = "load"`, and the engine is not shutting down.
    private var adapting: Bool { !spreadsAll.load(ordering: .relaxed) && !frozen.load(ordering: .relaxed) }

    func isAccepting(_ thread: Int) -> Bool {
        thread < accepting.load(ordering: .acquiring)
    }

    /// Records `thread`'s load (on a CPU or waiting for one) and its time on a CPU over its last measurement,
    /// as shares of wall time. The load is smoothed with the one before (accepting follows the load within a
    /// few timer passes); the time on a CPU over about a second (a hand-over is for a thread that stays
    /// saturated, not for one busy moment).
    func report(_ thread: Int, load: Double, busy: Double) {
        loads.withLock {
            $0[thread].load = ($0[thread].load + load) / 2
            $0[thread].busy = ($0[thread].busy * 7 + busy) / 8
        }
    }

    /// Records that `thread` is about to sleep with nothing to do.
    func reportIdle(_ thread: Int) {
        loads.withLock { $0[thread] = ThreadLoad() }
    }

    /// Stops all changes: the threads are being stopped, and one that has left its loop must not be handed
    /// connections.
    func freeze() {
        lastChange.withLock { _ in lastHandOver.withLock { _ in frozen.store(true, ordering: .relaxed) } }
    }

    /// Applies `[global] accept_spread`: `all` lets every thread accept; `load` starts again from thread 0 alone.
    func setSpreadsAll(_ all: Bool) {
        let changed: Range<Int>? = lastChange.withLock { _ in
            guard spreadsAll.exchange(all, ordering: .relaxed) != all else { return nil }
            let before = accepting.load(ordering: .relaxed)
            let target = all ? threadCount : 1
            accepting.store(target, ordering: .releasing)
            return min(before, target)..<max(before, target)
        }
        guard let changed, !changed.isEmpty else { return }
        let workers = workers.withLock { $0 }
        for index in changed where workers.indices.contains(index) { workers[index].post(.acceptSpreadChanged) }
    }

    /// Called on thread 0's timer passes: lets one more thread accept, or one fewer, when the load says so,
    /// and wakes the thread concerned so that it registers or drops the listening sockets.
    ///
    /// - Returns: the thread that joined, if one did.
    @discardableResult
    func rebalance(now: NIODeadline) -> Int? {
        guard threadCount > 1 else { return nil }
        let changed: (thread: Int, joined: Bool)? = lastChange.withLock { last in
            guard adapting, now - last >= Self.settleTime else { return nil }
            let count = accepting.load(ordering: .relaxed)
            let total = loads.withLock { $0.prefix(count).reduce(0) { $0 + $1.load } }
            let target: Int
            if count < threadCount, total > thresholds.growAbove * Double(count) {
                target = count + 1
            } else if count > 1, total <= thresholds.shrinkBelow * Double(count - 1) {
                target = count - 1
            } else {
                return nil
            }
            accepting.store(target, ordering: .releasing)
            last = now
            // The thread that joins is number `count`; the one that leaves is number `target`.
            return (min(count, target), target > count)
        }
        guard let changed else { return nil }
        worker(changed.thread)?.post(.acceptSpreadChanged)
        return changed.joined ? changed.thread : nil
    }

    /// Called on thread 0's timer passes (`accept_spread = "load"`): the accepting thread that should take
    /// half of thread 0's connections, if thread 0 is on a CPU `handOverAbove` of the time or more and that
    /// thread at most half as much, at most once per `settleTime`.
    func handOverTarget(now: NIODeadline) -> Int? {
        lastHandOver.withLock { last in
            guard adapting, now - last >= Self.settleTime else { return nil }
            let count = accepting.load(ordering: .relaxed)
            guard count > 1 else { return nil }
            let (first, quietest) = loads.withLock { loads in
                (loads[0].busy, (1..<count).min { loads[$0].busy < loads[$1].busy }.map { ($0, loads[$0].busy) })
            }
            guard first >= thresholds.handOverAbove, let quietest, quietest.1 * 2 <= first else { return nil }
            last = now
            return quietest.0
        }
    }

    /// What the calling thread has used of the CPU, and waited for it, in nanoseconds: the first two fields
    /// of `/proc/thread-self/schedstat` (time on a CPU, time runnable on a run queue), read through
    /// `descriptor`, which the thread opened for itself (`openSchedstat`). Waiting counts as load for
    /// accepting: a thread that is runnable but not running delays every connection it serves, however
    /// little CPU it uses, and new connections are better off on another. nil when the file cannot be read.
    static func schedulerTimes(_ descriptor: CInt) -> (running: Int64, waiting: Int64)? {
        var buffer = [UInt8](repeating: 0, count: 96)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        var fields: [Int64] = [0]
        for byte in buffer[0..<count] {
            if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                fields[fields.count - 1] = fields[fields.count - 1] &* 10 &+ Int64(byte - UInt8(ascii: "0"))
            } else if byte == UInt8(ascii: " ") {
                guard fields.count < 2 else { break }
                fields.append(0)
            } else {
                break
            }
        }
        return fields.count == 2 ? (fields[0], fields[1]) : nil
    }

    /// The CPU time the calling thread has used, user and system: the load when `schedulerTimes` cannot be read.
    static func threadCPUTime() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// Opens this thread's `/proc/thread-self/schedstat`; -1 when there is none (no /proc).
    static func openSchedstat() -> CInt {
        open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)
    }
}

/// One thread's recent share of wall time: on a CPU or waiting for one, and on a CPU.
struct ThreadLoad {
    var load = 0.0
    var busy = 0.0
}
