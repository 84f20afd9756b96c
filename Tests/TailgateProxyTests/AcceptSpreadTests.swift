import NIOCore
import Testing

@testable import TailgateProxy

/// How many relay threads accept: thread 0 alone until the accepting threads are busy (or waiting for a CPU)
/// more than 70 % of the time, one fewer once their load fits in fewer at 25 %, at most one change per second.
@Suite struct AcceptSpreadTests {
    static let start = NIODeadline.uptimeNanoseconds(10_000_000_000)

    /// Reports `load` (and `busy` of it on a CPU; by default all) for `thread` until the smoothed values have
    /// settled on them.
    func settle(_ spread: AcceptSpread, thread: Int, load: Double, busy: Double? = nil) {
        for _ in 0..<60 { spread.report(thread, load: load, busy: busy ?? load) }
    }

    @Test func aBusyThreadZeroBringsInTheNextThread() {
        let spread = AcceptSpread(threadCount: 3)
        #expect(spread.acceptingThreads == 1)
        #expect(spread.isAccepting(0) && !spread.isAccepting(1))
        settle(spread, thread: 0, load: 0.6)
        spread.rebalance(now: Self.start)
        #expect(spread.acceptingThreads == 1, "60 % busy is not enough (a connection-per-request load at ~1,300/s)")
        settle(spread, thread: 0, load: 0.75)
        #expect(spread.rebalance(now: Self.start + .milliseconds(100)) == 1, "thread 1 joins")
        #expect(spread.acceptingThreads == 2)
        #expect(spread.isAccepting(1) && !spread.isAccepting(2))
        // Still busy, but the last change is less than a second old.
        settle(spread, thread: 1, load: 0.75)
        spread.rebalance(now: Self.start + .milliseconds(600))
        #expect(spread.acceptingThreads == 2)
        spread.rebalance(now: Self.start + .milliseconds(1_200))
        #expect(spread.acceptingThreads == 3)
        // Never more threads than there are.
        settle(spread, thread: 2, load: 0.9)
        spread.rebalance(now: Self.start + .seconds(3))
        #expect(spread.acceptingThreads == 3)
    }

    @Test func aLightLoadGoesBackToFewerThreads() {
        let spread = AcceptSpread(threadCount: 2)
        settle(spread, thread: 0, load: 0.8)
        spread.rebalance(now: Self.start)
        #expect(spread.acceptingThreads == 2)
        // 2 × 0.2 would keep one thread 40 % busy: more than the 25 % that allows giving one up.
        settle(spread, thread: 0, load: 0.2)
        settle(spread, thread: 1, load: 0.2)
        spread.rebalance(now: Self.start + .seconds(2))
        #expect(spread.acceptingThreads == 2)
        settle(spread, thread: 1, load: 0.02)
        #expect(spread.rebalance(now: Self.start + .seconds(4)) == nil, "a thread that leaves is handed nothing")
        #expect(spread.acceptingThreads == 1)
        // A thread that goes idle reports no load at once.
        spread.reportIdle(0)
        spread.rebalance(now: Self.start + .seconds(6))
        #expect(spread.acceptingThreads == 1)
    }

    @Test func allSpreadsOverEveryThreadWhateverTheLoad() {
        let spread = AcceptSpread(threadCount: 4)
        spread.setSpreadsAll(true)
        #expect(spread.acceptingThreads == 4)
        spread.rebalance(now: Self.start + .seconds(5))
        #expect(spread.acceptingThreads == 4, "an idle agent keeps every thread accepting")
        spread.setSpreadsAll(false)
        #expect(spread.acceptingThreads == 1)
    }

    @Test func oneThreadStaysOne() {
        let spread = AcceptSpread(threadCount: 1)
        settle(spread, thread: 0, load: 1)
        spread.rebalance(now: Self.start)
        #expect(spread.acceptingThreads == 1)
    }

    /// Thread 0 hands half its connections to the least busy accepting thread once it is on a CPU 40 % of the
    /// time (averaged over about a second), not while it is mostly waiting for one, and at most once a second.
    @Test func threadZeroHandsOverOnceItIsOnACPUPartOfTheTime() {
        let spread = AcceptSpread(threadCount: 3)
        settle(spread, thread: 0, load: 0.95, busy: 0.9)
        #expect(spread.handOverTarget(now: Self.start) == nil, "nobody else accepts yet")
        #expect(spread.rebalance(now: Self.start) == 1)
        #expect(spread.handOverTarget(now: Self.start) == 1)
        #expect(spread.handOverTarget(now: Self.start + .milliseconds(500)) == nil, "at most once a second")
        // Busy, but mostly waiting for a CPU.
        settle(spread, thread: 0, load: 0.95, busy: 0.25)
        #expect(spread.handOverTarget(now: Self.start + .seconds(2)) == nil)
        // One busy moment is not a busy second.
        spread.report(0, load: 1, busy: 1)
        #expect(spread.handOverTarget(now: Self.start + .seconds(3)) == nil)
        // On a CPU half the time: 50 keep-alive connections next to their client and backend on 2 CPUs.
        settle(spread, thread: 0, load: 0.8, busy: 0.5)
        #expect(spread.handOverTarget(now: Self.start + .seconds(4)) == 1)
        // Saturated; thread 2 has joined, and is the quieter of the two.
        settle(spread, thread: 0, load: 0.95, busy: 0.9)
        settle(spread, thread: 1, load: 0.6, busy: 0.46)
        #expect(spread.rebalance(now: Self.start + .seconds(6)) == 2)
        #expect(spread.handOverTarget(now: Self.start + .seconds(7)) == 2)
        // Every other thread at more than half of thread 0's time on a CPU: nothing to gain.
        settle(spread, thread: 2, load: 0.6, busy: 0.46)
        #expect(spread.handOverTarget(now: Self.start + .seconds(9)) == nil)
    }

    @Test func allNeverHandsOver() {
        let spread = AcceptSpread(threadCount: 2)
        spread.setSpreadsAll(true)
        settle(spread, thread: 0, load: 1)
        #expect(spread.handOverTarget(now: Self.start) == nil)
    }
}
