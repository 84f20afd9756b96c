import Glibc

/// Signal dispositions the whole process relies on.
public enum ProcessSignals {
    /// A write to a socket or pipe whose reader is gone must fail with EPIPE, not end the process.
    /// Idempotent; called by the relay engine and the log writer, which write with write(2) or splice(2)
    /// (sockets written with send(2) pass MSG_NOSIGNAL instead).
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }
}
