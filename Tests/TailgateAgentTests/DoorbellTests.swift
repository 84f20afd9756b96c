import Testing

@testable import TailgateAgent

struct DoorbellTests {
    @Test func aWaitEndsAtItsDeadlineUnrung() async {
        let bell = Doorbell()
        let started = ContinuousClock.now
        let woken = await bell.wait(until: started + .milliseconds(50))
        #expect(!woken)
        #expect(ContinuousClock.now - started >= .milliseconds(50))
    }

    @Test func aRingWhileNobodyWaitsEndsTheNextWaitAtOnceAndOnlyThatOne() async {
        let bell = Doorbell()
        bell.ring()
        #expect(await bell.wait(until: nil))
        #expect(await bell.wait(until: .now + .milliseconds(20)) == false)
    }

    /// (Only the result tells a ring from the deadline: with the whole suite running, the test's own tasks
    /// can wait many seconds for a thread.)
    @Test func aRingEndsAWaitEarly() async {
        let bell = Doorbell()
        async let woken = bell.wait(until: .now + .seconds(120))
        try? await Task.sleep(for: .milliseconds(50))
        bell.ring()
        #expect(await woken)
    }

    @Test func cancellingTheWaiterEndsItsWait() async {
        let bell = Doorbell()
        let waiter = Task { await bell.wait(until: nil) }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        #expect(await waiter.value)
    }

    /// The timer of a wait that a ring ended must not end a later wait early: cancelled by the ring, it fires
    /// at once, and had it not been cancelled it would fire at its deadline; the later wait outlasts both.
    @Test func anEarlierWaitsTimerDoesNotEndALaterWait() async throws {
        let bell = Doorbell()
        let firstDeadline = ContinuousClock.now + .seconds(1)
        async let first = bell.wait(until: firstDeadline)
        // Lets the first wait begin before the ring. Either order passes: a ring that comes first ends the wait
        // at once, without a timer.
        try? await Task.sleep(for: .milliseconds(50))
        bell.ring()
        let rungBeforeTheDeadline = ContinuousClock.now < firstDeadline
        guard await first else {
            if rungBeforeTheDeadline {
                Issue.record("a ring before the deadline did not end the wait")
                return
            }
            // The deadline ended the first wait: the ring came after it (with the whole suite running, this
            // task can wait seconds for a thread), so there is no earlier timer to test.
            try Test.cancel("the ring came after the first wait's deadline")
        }
        // Both bounds only grow on a busy machine: the second wait begins once the first has ended, and must
        // last until its own deadline, which is after the first's.
        let started = ContinuousClock.now
        let secondDeadline = max(started, firstDeadline) + .seconds(1)
        #expect(await bell.wait(until: secondDeadline) == false)
        #expect(ContinuousClock.now >= secondDeadline)
    }
}
