import Glibc
import NIOCore
import Synchronization

/// How many relay threads accept new connections: as few as the load needs, lowest-numbered first.
///
/// A connection stays on the thread that accepted it. Spreading a light load over every thread costs CPU:
/// each thread sleeps and is woken more often, and the threads' shared state (descriptor table, counters)
/// moves between cores. On the 2-core benchmark machine, one relay thread spent ~270 µs of CPU per new TLS
/// connection where two spent ~330, at the same connection rate; keep-alive requests ~21 against ~24 µs. nginx
/// stream shows the same with 1 against 2 workers. So thread 0 accepts alone until its load (CPU time over
/// wall time, user and system) passes `growAbove`; then the next thread joins, and so on. A thread stops
/// accepting again when the load of the accepting threads would fit in one fewer at `shrinkBelow` or less.
/// Connections it already has stay with it.
final class AcceptSpread: Sendable {
    /// The share of wall time (per mille) that the accepting threads are busy on average before one more joins.
    static let growAbove = 500
    /// The share per thread (per mille) at which the accepting threads' load fits in one fewer.
    static let shrinkBelow = 300
    /// The least time between two changes, so that the count follows the load rather than its noise.
    static let settleTime: TimeAmount = .seconds(1)

    let threadCount: Int
    private let accepting = Atomic<Int>(1)
    /// `accept_spread = "all"`: every thread accepts and `rebalance` changes nothing.
    private let spreadsAll = Atomic<Bool>(false)
    /// Each thread's recent load (per mille), reported on its timer passes.
    private let loads: Mutex<[Int]>
    private let lastChange = Mutex<NIODeadline>(.uptimeNanoseconds(0))
    private let workers = Mutex<[SpliceWorker]>([])

    init(threadCount: Int) {
        self.threadCount = threadCount
        self.loads = Mutex([Int](repeating: 0, count: threadCount))
    }

    /// The threads to tell when their part changes; set once they exist.
    func attach(_ workers: [SpliceWorker]) {
        self.workers.withLock { $0 = workers }
    }

    var acceptingThreads: Int { accepting.load(ordering: .relaxed) }

    func isAccepting(_ thread: Int) -> Bool {
        thread < accepting.load(ordering: .acquiring)
    }

    /// Records `thread`'s load over its last measurement (smoothed with the one before).
    func report(_ thread: Int, load: Int) {
        loads.withLock { $0[thread] = ($0[thread] + load) / 2 }
    }

    /// Records that `thread` is about to sleep with nothing to do.
    func reportIdle(_ thread: Int) {
        loads.withLock { $0[thread] = 0 }
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
    func rebalance(now: NIODeadline) {
        guard threadCount > 1 else { return }
        let changed: Int? = lastChange.withLock { last in
            guard !spreadsAll.load(ordering: .relaxed), now - last >= Self.settleTime else { return nil }
            let count = accepting.load(ordering: .relaxed)
            let total = loads.withLock { $0.prefix(count).reduce(0, +) }
            let target: Int
            if count < threadCount, total > Self.growAbove * count {
                target = count + 1
            } else if count > 1, total <= Self.shrinkBelow * (count - 1) {
                target = count - 1
            } else {
                return nil
            }
            accepting.store(target, ordering: .releasing)
            last = now
            // The thread that joins is number `count`; the one that leaves is number `target`.
            return min(count, target)
        }
        guard let changed else { return }
        let worker = workers.withLock { $0.indices.contains(changed) ? $0[changed] : nil }
        worker?.post(.acceptSpreadChanged)
    }

    /// The CPU time this thread has used, user and system.
    static func threadCPUTime() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
