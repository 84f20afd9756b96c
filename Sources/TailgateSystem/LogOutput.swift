import CTailgateLinux
import Glibc
import Synchronization

/// Where the agent's log lines go: standard error, written by one thread of its own.
///
/// A reader that stops reading (journald stalled, `tailgate run 2>&1 | tee` whose reader hangs) fills the
/// pipe, and a `write(2)` to a full pipe blocks. Only the writer thread ever waits on it: every other thread
/// hands its lines to a bounded queue and goes on. When the queue is full, lines are dropped and counted;
/// once writing resumes, one line says how many were lost (HAProxy's non-blocking log datagrams, with the
/// loss owned up to).
///
/// Before `startWriter()` (the command-line tools, a start that fails early) lines are written at once.
public final class LogOutput: Sendable {
    /// Standard error, the agent's only log destination.
    public static let standardError = LogOutput(descriptor: 2, capacity: 4 << 20)

    private struct Queue {
        /// Whole lines, as handed over (one line, or a relay thread's batch), with how many lines each holds.
        var chunks: [(bytes: [UInt8], lines: Int)] = []
        var bytes = 0
        /// Lines dropped since the writer last said so.
        var unreported = 0
        /// Lines queued or taken by the writer, and not yet written.
        var inFlight = 0
        /// The writer sleeps on its eventfd and must be woken.
        var writerAsleep = false
        var started = false
    }

    private let descriptor: CInt
    /// Bytes the queue holds at most (the batch the writer has taken comes on top).
    private let capacity: Atomic<Int>
    private let queue = Mutex(Queue())
    private let wakeup: CInt
    private let droppedTotal = Atomic<Int>(0)
    /// Makes the line that owns up to a loss, in the format in force (set by the agent's log handler).
    private let lossLine = Mutex<(@Sendable (Int) -> [UInt8])?>(nil)

    public init(descriptor: CInt, capacity: Int) {
        self.descriptor = descriptor
        self.capacity = Atomic(capacity)
        self.wakeup = tailgate_eventfd_blocking()
    }

    /// Lines dropped since start because the destination did not keep up.
    public var droppedLines: Int { droppedTotal.load(ordering: .relaxed) }

    /// Changes how many bytes of lines the queue may hold (`[log] buffer`).
    public func setCapacity(_ bytes: Int) {
        capacity.store(bytes, ordering: .relaxed)
    }

    /// Sets how the line that reports dropped lines reads.
    public func describeLoss(with makeLine: @escaping @Sendable (Int) -> [UInt8]) {
        lossLine.withLock { $0 = makeLine }
    }

    /// From now on lines go through the queue to a writer thread ("log-writer"). Idempotent.
    public func startWriter() {
        guard wakeup >= 0 else { return }
        let start = queue.withLock { queue -> Bool in
            defer { queue.started = true }
            return !queue.started
        }
        guard start else { return }
        // A standard error whose reader is gone must make the writer's write fail, not end the agent.
        ProcessSignals.ignoreBrokenPipes()
        guard NamedThread.startDetached(name: "log-writer", { [self] in runWriter() }) else {
            queue.withLock { $0.started = false }
            return
        }
    }

    /// Hands `bytes` (whole lines, each ending with its newline) to the writer; never waits for the
    /// destination. `lines` is how many lines `bytes` holds, for the loss count.
    public func write(_ bytes: [UInt8], lines: Int = 1) {
        guard !bytes.isEmpty else { return }
        enum Next { case writeNow, wake, done }
        let next = queue.withLock { queue -> Next in
            guard queue.started else { return .writeNow }
            guard queue.bytes + bytes.count <= capacity.load(ordering: .relaxed) else {
                queue.unreported += lines
                droppedTotal.add(lines, ordering: .relaxed)
                return .done
            }
            queue.chunks.append((bytes, lines))
            queue.bytes += bytes.count
            queue.inFlight += lines
            guard queue.writerAsleep else { return .done }
            queue.writerAsleep = false
            return .wake
        }
        switch next {
        case .writeNow: _ = Self.writeFully(descriptor, bytes)
        case .wake: Self.ring(wakeup)
        case .done: break
        }
    }

    /// Waits until the queue is written out or `milliseconds` have passed (at exit: lines are not lost to a
    /// quick stop, and a destination that does not read cannot hold the exit back). True when written out.
    @discardableResult
    public func flush(milliseconds: Int) -> Bool {
        var waited = 0
        while queue.withLock({ $0.inFlight > 0 }) {
            guard waited < milliseconds else { return false }
            var pause = timespec(tv_sec: 0, tv_nsec: 2_000_000)
            nanosleep(&pause, nil)
            waited += 2
        }
        return true
    }

    private func runWriter() {
        while true {
            let taken = queue.withLock { queue -> (chunks: [(bytes: [UInt8], lines: Int)], lines: Int, lost: Int)? in
                guard !queue.chunks.isEmpty || queue.unreported > 0 else {
                    queue.writerAsleep = true
                    return nil
                }
                let taken = (queue.chunks, queue.inFlight, queue.unreported)
                queue.chunks.removeAll(keepingCapacity: true)
                queue.bytes = 0
                queue.unreported = 0
                return taken
            }
            guard let taken else {
                var count: UInt64 = 0
                _ = read(wakeup, &count, 8)
                continue
            }
            // Chunk by chunk, not joined first: a burst would otherwise leave a large allocation behind in
            // this thread's malloc arena, and idle memory would keep it.
            for chunk in taken.chunks where !Self.writeFully(descriptor, chunk.bytes) {
                // The destination is gone (EPIPE, EBADF): what was taken is lost.
                droppedTotal.add(chunk.lines, ordering: .relaxed)
            }
            if taken.lost > 0, let line = lossLine.withLock({ $0 })?(taken.lost) {
                _ = Self.writeFully(descriptor, line)
            }
            queue.withLock { $0.inFlight -= taken.lines }
        }
    }

    private static func ring(_ eventfd: CInt) {
        var one: UInt64 = 1
        _ = Glibc.write(eventfd, &one, 8)
    }

    /// Writes all of `bytes`, waiting for room when the descriptor is non-blocking; false when it fails.
    @discardableResult
    static func writeFully(_ descriptor: CInt, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return true }
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor, base + offset, raw.count - offset)
                if written > 0 {
                    offset += written
                    continue
                }
                switch errno {
                case EINTR:
                    continue
                case EAGAIN:
                    var wanted = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&wanted, 1, -1)
                default:
                    return false
                }
            }
            return true
        }
    }
}
