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

    /// The timer of a wait that a ring ended must not end a later wait early.
    @Test func anEarlierWaitsTimerDoesNotEndALaterWait() async {
        // The first deadline leaves room for this task to wait for a thread before it rings; the second
        // wait outlasts the first's timer.
        let bell = Doorbell()
        async let first = bell.wait(until: .now + .seconds(2))
        try? await Task.sleep(for: .milliseconds(5))
        bell.ring()
        #expect(await first)
        let started = ContinuousClock.now
        #expect(await bell.wait(until: started + .seconds(4)) == false)
        #expect(ContinuousClock.now - started >= .seconds(4))
    }
}
