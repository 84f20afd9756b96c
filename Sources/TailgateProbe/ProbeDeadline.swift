/// The moment a check must be over by, measured on the continuous (monotonic) clock.
struct ProbeDeadline {
    let start: ContinuousClock.Instant
    let end: ContinuousClock.Instant

    init(timeout: Duration) {
        start = ContinuousClock.now
        end = start.advanced(by: max(timeout, .zero))
    }

    /// Time since the check started.
    var elapsed: Duration { ContinuousClock.now - start }

    /// The time left as a `poll` timeout in milliseconds, rounded up so that a wait never ends
    /// just short of the deadline and spins; nil once the deadline has passed.
    var pollMilliseconds: Int32? {
        let remaining = end - ContinuousClock.now
        guard remaining > .zero else { return nil }
        let (seconds, attoseconds) = remaining.components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        let milliseconds = seconds * 1000 + (attoseconds + attosecondsPerMillisecond - 1) / attosecondsPerMillisecond
        return Int32(clamping: milliseconds)
    }
}
