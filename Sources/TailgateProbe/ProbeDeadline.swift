import NIOCore

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

    /// The same moment on the clock `OutgoingConnection` waits with.
    var uptime: NIODeadline {
        let (seconds, attoseconds) = (end - ContinuousClock.now).components
        return .now() + .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
