import Testing

@testable import TailgateProbe

/// How long the probe's waits may last: the time left to the deadline, in poll's milliseconds.
@Suite struct ProbeDeadlineTests {
    @Test func aWaitLastsAtMostTheTimeLeftRoundedUpToAMillisecond() throws {
        let milliseconds = try #require(ProbeDeadline(timeout: .seconds(60) + .microseconds(300)).pollMilliseconds)
        #expect(milliseconds <= 60_001)
        #expect(milliseconds > 0)
    }

    @Test func lessThanAMillisecondLeftIsAWaitOfOneNotOfNone() {
        // Rounded down, the wait would end short of the deadline and the loop around it would spin.
        let milliseconds = ProbeDeadline(timeout: .microseconds(500)).pollMilliseconds
        #expect(milliseconds == 1 || milliseconds == nil, "\(String(describing: milliseconds))")
    }

    @Test func aPassedDeadlineLeavesNoWait() {
        #expect(ProbeDeadline(timeout: .zero).pollMilliseconds == nil)
        #expect(ProbeDeadline(timeout: .milliseconds(-5)).pollMilliseconds == nil)
    }
}
