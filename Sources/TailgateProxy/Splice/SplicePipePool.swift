import CTailgateLinux
import Glibc

/// A kernel pipe: splice(2) moves socket bytes into its write end and out of its read end.
struct SplicePipe {
    let readEnd: CInt
    let writeEnd: CInt

    func close() {
        Glibc.close(readEnd)
        Glibc.close(writeEnd)
    }
}

/// Empty pipes kept for reuse by one relay thread, so that a connection holds a pipe only while bytes are
/// in flight and creating one costs a syscall only when the pool is empty.
final class SplicePipePool {
    /// Enough for the bursts of one thread; more are closed when returned.
    static let keep = 64
    /// What one splice moves at most: the default pipe capacity (16 pages).
    static let chunk = 65_536

    private var free: [SplicePipe] = []

    /// An empty pipe, or nil with errno set when the process is out of descriptors.
    func take() -> SplicePipe? {
        if let pipe = free.popLast() { return pipe }
        var ends: [CInt] = [-1, -1]
        guard tailgate_pipe(&ends) == 0 else { return nil }
        return SplicePipe(readEnd: ends[0], writeEnd: ends[1])
    }

    /// Returns an empty pipe. A pipe that may still hold bytes must be closed instead.
    func give(_ pipe: SplicePipe) {
        if free.count < Self.keep {
            free.append(pipe)
        } else {
            pipe.close()
        }
    }

    func drain() {
        for pipe in free { pipe.close() }
        free.removeAll()
    }
}

@available(*, unavailable)
extension SplicePipePool: Sendable {}
