import Glibc
import NIOPosix

/// Where log lines go: standard error, one write(2) per line — or, on a relay thread, batched: a busy thread
/// ends hundreds of connections a second, and each write to a file or to journald's socket costs more than
/// formatting the line. Measured against `level = "warning"` (no connection lines): flushing after every
/// turn of the loop (one or two lines per write under load) still cost ~7 % of a connection's CPU; flushing
/// on the timer pass, the difference is lost in the noise.
///
/// A batch never grows past `PIPE_BUF` (4,096 bytes), so each write stays atomic on a pipe and lines from
/// several threads never interleave. The relay thread flushes on its timer pass and before it sleeps with
/// nothing to do, so a line is held for about 100 ms at most.
public enum StandardErrorLines {
    static let batchLimit = Int(PIPE_BUF)

    /// Only ever touched by the thread it belongs to.
    fileprivate final class Batch: @unchecked Sendable {
        var bytes: [UInt8] = []

        init() {
            bytes.reserveCapacity(StandardErrorLines.batchLimit)
        }
    }

    private static let batches = ThreadSpecificVariable<Batch>()

    /// Writes `line` (which ends with its newline): with the calling thread's batch when it has one and
    /// `mayWait` (connection and other info lines), else now (warnings and errors are not held back).
    public static func write(_ line: [UInt8], mayWait: Bool = false) {
        guard mayWait, let batch = batches.currentValue else {
            writeFully(line)
            return
        }
        if batch.bytes.count + line.count > batchLimit {
            flush(batch)
            if line.count > batchLimit {
                writeFully(line)
                return
            }
        }
        batch.bytes.append(contentsOf: line)
    }

    /// The calling thread's batch, flushed by the thread's loop.
    struct Batching {
        fileprivate let batch: Batch

        /// Writes what the batch holds.
        func flush() {
            guard !batch.bytes.isEmpty else { return }
            StandardErrorLines.flush(batch)
        }
    }

    /// From now on, lines written on the calling thread wait for `Batching.flush()`.
    static func startBatching() -> Batching {
        let batch = Batch()
        batches.currentValue = batch
        return Batching(batch: batch)
    }

    /// Flushes and stops batching on the calling thread.
    static func stopBatching() {
        if let batch = batches.currentValue, !batch.bytes.isEmpty { flush(batch) }
        batches.currentValue = nil
    }

    fileprivate static func flush(_ batch: Batch) {
        writeFully(batch.bytes)
        batch.bytes.removeAll(keepingCapacity: true)
    }

    private static func writeFully(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(2, base + offset, raw.count - offset)
                if written < 0, errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
