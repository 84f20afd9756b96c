import Testing

@testable import TailgateAgent

/// What a SIGHUP does at each point of the agent's life.
@Suite struct ReloadLifeTests {
    @Test func aHangUpWhileStartingIsServedOnceTheFirstConfigurationIsApplied() {
        var life = ReloadLife.starting(pending: false)
        let result1 = life.hangUp()
        #expect(result1 == .afterStart)
        let result2 = life.hangUp()
        #expect(result2 == .afterStart, "several make one reload")
        let result3 = life.started()
        #expect(result3)
        #expect(life.isReloading)
        let result4 = life.reloadFinished()
        #expect(!result4)
        #expect(life == .serving)
    }

    @Test func aStartWithoutHangUpServes() {
        var life = ReloadLife.starting(pending: false)
        let result5 = life.started()
        #expect(!result5)
        #expect(life == .serving)
    }

    @Test func hangUpsDuringAReloadMakeExactlyOneMoreFollow() {
        var life = ReloadLife.serving
        let result6 = life.hangUp()
        #expect(result6 == .reloadNow)
        let result7 = life.hangUp()
        #expect(result7 == .queued)
        let result8 = life.hangUp()
        #expect(result8 == .queued)
        let result9 = life.reloadFinished()
        #expect(result9, "one more, for the file may have changed since it was read")
        let result10 = life.reloadFinished()
        #expect(!result10)
        #expect(life == .serving)
    }

    @Test func whileStoppingReloadsAreRefusedAndOnlyTheFirstIsAWarning() {
        var life = ReloadLife.reloading(again: true)
        life.stop()
        let result11 = life.reloadFinished()
        #expect(!result11, "a reload under way when the stop came has no successor")
        let result12 = life.hangUp()
        #expect(result12 == .refused(first: true))
        let result13 = life.hangUp()
        #expect(result13 == .refused(first: false))
        #expect(!life.abortRequested)
        life.abort()
        #expect(life.abortRequested)
        life.stop()
        #expect(life.abortRequested, "a repeated stop keeps the abort")
    }

    @Test func anAbortBeforeTheStopMeansNothing() {
        var life = ReloadLife.serving
        life.abort()
        #expect(life == .serving)
    }
}
