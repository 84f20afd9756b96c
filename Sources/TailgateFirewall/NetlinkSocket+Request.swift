import CNftables
import Glibc

extension NetlinkSocket {
    /// How a request ended.
    enum RequestOutcome {
        case done
        /// The kernel answered ENOENT (no such table, set...).
        case notFound
    }

    /// What a dump saw besides its data: whether it is consistent.
    struct DumpObservation {
        /// Low 16 bits of the ruleset generation of every reply.
        var generationTags: Set<UInt16> = []
        /// NLM_F_DUMP_INTR: the ruleset changed while the kernel was dumping.
        var interrupted = false
    }

    /// Sends one GET request (a dump, or a single object with NLM_F_ACK) and hands each data reply to
    /// `body`, until NLMSG_DONE or the acknowledgement. Waits are bounded by `replyTimeoutMilliseconds`.
    func request(
        _ message: [UInt8], observation: inout DumpObservation, _ body: (NetlinkMessage) throws(FirewallError) -> Void
    ) throws(FirewallError) -> RequestOutcome {
        let sequence = message.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        try send(message)
        var outcome: RequestOutcome?
        var seen = observation
        while outcome == nil {
            let received = try receive(timeout: Self.replyTimeoutMilliseconds) { (messages) throws(FirewallError) in
                for reply in messages where reply.sequence == sequence && reply.portID == portID && outcome == nil {
                    switch Int32(reply.type) {
                    case NLMSG_NOOP:
                        continue
                    case NLMSG_DONE:
                        outcome = try Self.outcome(of: reply.doneErrorCode, operation: operation)
                    case NLMSG_ERROR:
                        outcome = try Self.outcome(of: reply.errorCode ?? EPROTO, operation: operation)
                    default:
                        if reply.flags & UInt16(NLM_F_DUMP_INTR) != 0 { seen.interrupted = true }
                        if let tag = reply.generationTag { seen.generationTags.insert(tag) }
                        try body(reply)
                    }
                }
            }
            guard received else {
                throw .system(call: "\(operation): waiting for nf_tables to answer", errno: ETIMEDOUT)
            }
        }
        observation = seen
        return outcome ?? .done
    }

    /// Convenience for requests whose consistency does not matter.
    func request(_ message: [UInt8], _ body: (NetlinkMessage) throws(FirewallError) -> Void) throws(FirewallError) -> RequestOutcome {
        var observation = DumpObservation()
        return try request(message, observation: &observation, body)
    }

    private static func outcome(of code: Int32, operation: String) throws(FirewallError) -> RequestOutcome {
        switch code {
        case 0: return .done
        case ENOENT: return .notFound
        default: throw FirewallError.from(errno: code, during: operation)
        }
    }

    /// Builds a GET request: header plus whatever `payload` adds (libnftnl's `*_nlmsg_build_payload`).
    static func getRequest(
        _ type: nf_tables_msg_types, family: Int32 = Int32(NFPROTO_INET), flags: Int32, sequence: UInt32,
        payload: (UnsafeMutablePointer<nlmsghdr>) -> Void = { _ in }
    ) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let length = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self),
                  let header = nftnl_nlmsg_build_hdr(base, UInt16(type.rawValue), UInt16(family), UInt16(flags), sequence)
            else { return 0 }
            payload(header)
            return Int(header.pointee.nlmsg_len)
        }
        return Array(buffer.prefix(length))
    }
}
