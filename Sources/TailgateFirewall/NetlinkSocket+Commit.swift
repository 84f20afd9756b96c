import CNftables
import Glibc

extension NetlinkSocket {
    /// One answer to a batch message that was not an acknowledgement.
    private struct Failure {
        let sequence: UInt32
        let code: Int32
        let kernelText: String?
    }

    /// Sends the batch with one sendmsg and collects one answer per message. The kernel processes the
    /// batch inside sendmsg: after a failure it still acknowledges the good messages, but nothing was
    /// committed, so any error means the old ruleset is untouched.
    func commit(_ batch: NetlinkBatch) throws(FirewallError) {
        prepareBuffers(forBatchOf: batch.bytes.count, acknowledgements: batch.acknowledgedCount)
        try send(batch.bytes)
        var acknowledged = Set<UInt32>()
        var failures: [Failure] = []
        var headerRefused = false
        while acknowledged.count + failures.count < batch.acknowledgedCount, !headerRefused {
            // Once something failed, take only what is already queued instead of waiting.
            let timeout = failures.isEmpty ? Self.replyTimeoutMilliseconds : 0
            let received = try receive(timeout: timeout) { messages in
                for reply in messages where reply.portID == portID {
                    guard let sequence = reply.erroredSequence, let code = reply.errorCode else { continue }
                    if code == 0 {
                        acknowledged.insert(sequence)
                    } else {
                        failures.append(Failure(sequence: sequence, code: code, kernelText: reply.extendedAckText))
                        if sequence == batch.beginSequence { headerRefused = true }
                    }
                }
            }
            if !received { break }
        }
        if let first = failures.min(by: { $0.sequence < $1.sequence }) {
            throw error(for: first, of: failures.count, in: batch)
        }
        guard acknowledged.count == batch.acknowledgedCount else {
            throw .system(
                call: "\(operation): waiting for nf_tables to answer the batch (\(acknowledged.count) of \(batch.acknowledgedCount) answers)",
                errno: ETIMEDOUT
            )
        }
    }

    private func error(for failure: Failure, of count: Int, in batch: NetlinkBatch) -> FirewallError {
        switch failure.code {
        case EPERM, EACCES:
            // nfnetlink checks CAP_NET_ADMIN once, for the whole batch (the header's sequence number);
            // past that check, EPERM means another process owns the table (NFT_TABLE_F_OWNER).
            guard failure.sequence != batch.beginSequence else { return .permissionDenied(operation) }
            return .rejected("\(operation): \(batch.describe(failure.sequence)) failed: \(FirewallError.errorText(failure.code)); "
                + "the table is owned by another process (NFT_TABLE_F_OWNER), stop it or remove its table")
        case ENOENT where failure.sequence != batch.beginSequence:
            return .notFound("\(operation): \(batch.describe(failure.sequence))")
        case EOPNOTSUPP where failure.sequence == batch.beginSequence, EAFNOSUPPORT, EPROTONOSUPPORT:
            return .unavailable("\(operation): \(batch.describe(failure.sequence)) failed: \(FirewallError.errorText(failure.code))")
        default:
            var text = "\(batch.describe(failure.sequence)) failed: \(FirewallError.errorText(failure.code))"
            if let kernelText = failure.kernelText, !kernelText.isEmpty { text += " (kernel: \(kernelText))" }
            if count > 1 { text += "; \(count - 1) later message(s) failed too" }
            return .rejected("\(operation): \(text)")
        }
    }
}
