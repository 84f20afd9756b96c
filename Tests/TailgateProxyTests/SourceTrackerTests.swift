import Testing
@testable import TailgateConfig
@testable import TailgateProxy

/// The per-source table: connection and rate limits, eviction that never forgets a source with connections
/// open, and a size that a flood of distinct sources does not grow.
@Suite struct SourceTrackerTests {
    static let second: Int64 = 1_000_000_000

    static func key(_ text: String) -> SourceKey { SourceKey(IPAddress(text)!, ipv4Prefix: 32, ipv6Prefix: 64) }

    @Test func openConnectionsAreLimitedAndGivenBack() {
        let tracker = SourceTracker(capacity: 64)
        let limits = SourceLimits(maxConnections: 2)
        let a = Self.key("203.0.113.7"), b = Self.key("203.0.113.8")
        #expect(tracker.admit(a, limits: limits, now: 0) == .admitted(a))
        #expect(tracker.admit(a, limits: limits, now: 1) == .admitted(a))
        #expect(tracker.admit(a, limits: limits, now: 2) == .overConnections(a, open: 2))
        #expect(tracker.admit(b, limits: limits, now: 3) == .admitted(b), "another source is not affected")
        tracker.release(a)
        #expect(tracker.openConnections(a) == 1)
        #expect(tracker.admit(a, limits: limits, now: 4) == .admitted(a))
    }

    @Test func theRateIsASlidingWindow() {
        let tracker = SourceTracker(capacity: 64)
        let limits = SourceLimits(rate: .init(count: 4, window: .seconds(10)))
        let a = Self.key("2001:db8::1")
        for index in 0..<4 {
            #expect(tracker.admit(a, limits: limits, now: Int64(index) * Self.second) == .admitted(a))
            tracker.release(a)
        }
        #expect(tracker.admit(a, limits: limits, now: 5 * Self.second) == .overRate(a))
        // 15 s: the previous window (5 attempts) still weighs half: 2.5 + 0 → one more fits, then no more.
        #expect(tracker.admit(a, limits: limits, now: 15 * Self.second) == .admitted(a))
        #expect(tracker.admit(a, limits: limits, now: 15 * Self.second) == .overRate(a), "2.5 + 1 + this one > 4")
        // Two windows of quiet: a fresh start.
        #expect(tracker.admit(a, limits: limits, now: 40 * Self.second) == .admitted(a))
        // Refused attempts count: a source that keeps trying stays refused.
        let b = Self.key("2001:db8:0:1::1")
        for index in 0..<50 { _ = tracker.admit(b, limits: limits, now: Int64(index) * Self.second / 10) }
        #expect(tracker.admit(b, limits: limits, now: 12 * Self.second) == .overRate(b))
    }

    @Test func idleSourcesAreEvictedButOnesWithConnectionsOpenAreNot() {
        let tracker = SourceTracker(capacity: 16)
        let limits = SourceLimits(maxConnections: 1)
        let holder = Self.key("198.51.100.1")
        #expect(tracker.admit(holder, limits: limits, now: 0) == .admitted(holder))
        for index in 0..<10_000 {
            let other = Self.key("10.0.\(index / 250).\(index % 250)")
            if case .admitted(let key) = tracker.admit(other, limits: limits, now: Int64(index + 1)) { tracker.release(key) }
        }
        #expect(tracker.admit(holder, limits: limits, now: 20_000) == .overConnections(holder, open: 1), "still counted after 10,000 others passed")
        let statistics = tracker.statistics
        #expect(statistics.sources == 16 && statistics.evictions > 9_000, "\(statistics)")
    }

    @Test func aFullGroupLetsNewcomersInUntracked() {
        let tracker = SourceTracker(capacity: 16)
        let limits = SourceLimits(maxConnections: 1)
        var admitted = 0, untracked = 0
        for index in 0..<40 {
            switch tracker.admit(Self.key("10.1.0.\(index)"), limits: limits, now: Int64(index)) {
            case .admitted: admitted += 1
            case .untracked: untracked += 1
            default: Issue.record("unexpected refusal")
            }
        }
        #expect(admitted == 16 && untracked == 24 && tracker.statistics.untracked == 24)
    }

    /// A million distinct sources through a table sized for a listener of 4,096 connections: the table does
    /// not grow, and a source holding connections is still counted at the end.
    @Test func aMillionDistinctSourcesCostNoMoreMemory() {
        let tracker = SourceTracker(capacity: SourceTracker.capacity(forListenerLimit: 4_096))
        let limits = SourceLimits(maxConnections: 2, rate: .init(count: 100, window: .seconds(10)))
        let holder = Self.key("2001:db8:ffff::1")
        _ = tracker.admit(holder, limits: limits, now: 0)
        _ = tracker.admit(holder, limits: limits, now: 0)
        for index in 0..<1_000_000 {
            let key = SourceKey(IPAddress(v4: 0x0A00_0000 | UInt32(index)), ipv4Prefix: 32, ipv6Prefix: 64)
            if case .admitted(let counted) = tracker.admit(key, limits: limits, now: Int64(index) * 1_000) { tracker.release(counted) }
        }
        #expect(tracker.capacity == 16_384)
        #expect(tracker.statistics.sources <= 16_384 && tracker.statistics.untracked == 0, "\(tracker.statistics)")
        #expect(tracker.admit(holder, limits: limits, now: 2 * Self.second) == .overConnections(holder, open: 2))
    }
}

/// A listener's `ban` rule counting offenses per source.
@Suite struct OffenseTrackerTests {
    @Test func offensesWithinTheWindowBanAndRepeatOffendersGetDoubleUpToTheMaximum() {
        let tracker = OffenseTracker(capacity: 64)
        let rule = BanRule(after: 3, within: .seconds(60), duration: .seconds(600), max: .seconds(1_800))
        let key = SourceTrackerTests.key("203.0.113.7")
        let second: Int64 = 1_000_000_000
        #expect(tracker.offend(key, rule: rule, now: 0) == nil)
        #expect(tracker.offend(key, rule: rule, now: 1 * second) == nil)
        #expect(tracker.offend(key, rule: rule, now: 2 * second)?.length == .seconds(600))
        for index in 3..<5 { #expect(tracker.offend(key, rule: rule, now: Int64(index) * second) == nil) }
        #expect(tracker.offend(key, rule: rule, now: 5 * second)?.length == .seconds(1_200), "the second ban doubles")
        for index in 6..<8 { _ = tracker.offend(key, rule: rule, now: Int64(index) * second) }
        #expect(tracker.offend(key, rule: rule, now: 8 * second)?.length == .seconds(1_800), "capped at max")
        // Offenses further apart than the window never add up.
        let other = SourceTrackerTests.key("203.0.113.8")
        for index in 0..<10 { #expect(tracker.offend(other, rule: rule, now: Int64(index) * 61 * second) == nil) }
    }
}
