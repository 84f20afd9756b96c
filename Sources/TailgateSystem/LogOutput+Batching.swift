import NIOPosix

extension LogOutput {
    /// A thread's lines held back and handed to the queue together: a relay thread ends hundreds of
    /// connections a second, and one hand-over per line (a lock, and a wake-up of the writer) costs more
    /// than the line. The thread's loop flushes on its timer pass and before it sleeps, so a line waits
    /// about 100 ms at most.
    public struct Batching {
        fileprivate let batch: Batch
        fileprivate let output: LogOutput

        /// Hands what the batch holds to the writer.
        public func flush() {
            output.flush(batch)
        }
    }

    /// Only ever touched by the thread it belongs to.
    fileprivate final class Batch: @unchecked Sendable {
        /// The batch a relay thread fills between two timer passes, at most (a few dozen lines).
        static let limit = 8_192
        var bytes: [UInt8] = []
        var lines = 0
    }

    private static let batches = ThreadSpecificVariable<Batch>()

    /// Writes `line` (which ends with its newline): into the calling thread's batch when it has one and
    /// `mayWait` (connection and other info lines), else to the queue (warnings are not held back).
    public func write(_ line: [UInt8], mayWait: Bool) {
        guard mayWait, let batch = Self.batches.currentValue else {
            write(line)
            return
        }
        if batch.bytes.count + line.count > Batch.limit { flush(batch) }
        if batch.bytes.isEmpty { batch.bytes.reserveCapacity(Batch.limit) }
        batch.bytes.append(contentsOf: line)
        batch.lines += 1
    }

    /// From now on, lines written on the calling thread with `mayWait` wait for `Batching.flush()`.
    public func startBatching() -> Batching {
        let batch = Batch()
        Self.batches.currentValue = batch
        return Batching(batch: batch, output: self)
    }

    /// Flushes and stops batching on the calling thread.
    public func stopBatching() {
        if let batch = Self.batches.currentValue { flush(batch) }
        Self.batches.currentValue = nil
    }

    fileprivate func flush(_ batch: Batch) {
        guard !batch.bytes.isEmpty else { return }
        write(batch.bytes, lines: batch.lines)
        batch.bytes = []
        batch.lines = 0
    }
}
