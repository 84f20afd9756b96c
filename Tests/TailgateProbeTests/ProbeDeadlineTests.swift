import NIOCore
import Testing

@testable import TailgateProbe

/// A check's deadline on the clock the shared connect waits with (`OutgoingConnection` rounds the waits).
@Suite struct ProbeDeadlineTests {
    @Test func theDeadlineIsTheSameMomentOnTheUptimeClock() {
        let left = ProbeDeadline(timeout: .seconds(60)).uptime - .now()
        #expect(left <= .seconds(60))
        #expect(left > .seconds(50))
    }

    @Test func aPassedDeadlineIsInThePast() {
        #expect(ProbeDeadline(timeout: .zero).uptime <= .now())
        #expect(ProbeDeadline(timeout: .milliseconds(-5)).uptime <= .now())
    }
}
