import Glibc

/// Signal dispositions the whole process relies on.
public enum ProcessSignals {
    /// A write to a socket or pipe whose reader is gone must fail with EPIPE, not end the process.
    /// Idempotent; called by everything that writes to peers (the relay, the log writer, the checks).
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }
}
