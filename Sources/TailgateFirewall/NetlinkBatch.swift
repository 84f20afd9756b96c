import CNftables

/// An nf_tables transaction: BATCH_BEGIN, messages that each ask for an ACK, BATCH_END, all in one
/// buffer sent with one sendmsg. The kernel commits all of it or none of it.
struct NetlinkBatch {
    /// The buffer to send.
    private(set) var bytes: [UInt8] = []
    /// What each acknowledged message does, by sequence number, for error reports.
    private(set) var descriptions: [UInt32: String] = [:]
    /// Sequence number of BATCH_BEGIN (and of the first message, minus one).
    let beginSequence: UInt32
    private var sequence: UInt32
    /// One message at a time is built here by libnftnl, which writes without bounds checks: a set's
    /// elements are split below 64 KiB per message, so 128 KiB always suffices.
    private var scratch = [UInt8](repeating: 0, count: 1 << 17)

    /// Messages that carry NLM_F_ACK, i.e. how many answers to expect.
    var acknowledgedCount: Int { descriptions.count }

    init(beginSequence: UInt32) {
        self.beginSequence = beginSequence
        sequence = beginSequence
        appendFramed { nftnl_batch_begin($0, beginSequence) }
    }

    /// Appends one message of `type` (family inet) with `flags | NLM_F_ACK`; `payload` fills it in.
    mutating func append(
        _ type: nf_tables_msg_types, flags: Int32, _ description: String, payload: (UnsafeMutablePointer<nlmsghdr>) -> Void
    ) {
        let messageSequence = sequence
        descriptions[messageSequence] = description
        appendFramed { buffer in
            let header = nftnl_nlmsg_build_hdr(buffer, UInt16(type.rawValue), UInt16(NFPROTO_INET), UInt16(flags | NLM_F_ACK), messageSequence)
            if let header { payload(header) }
            return header
        }
    }

    /// Appends BATCH_END; the batch is then ready to send.
    mutating func finish() {
        let endSequence = sequence
        appendFramed { nftnl_batch_end($0, endSequence) }
    }

    /// The one-based position of the message with `sequence` and what it does.
    func describe(_ messageSequence: UInt32) -> String {
        if messageSequence == beginSequence { return "the batch header" }
        let position = Int(messageSequence &- beginSequence)
        return "message \(position) of \(acknowledgedCount) (\(descriptions[messageSequence] ?? "unknown"))"
    }

    private mutating func appendFramed(_ build: (UnsafeMutablePointer<CChar>) -> UnsafeMutablePointer<nlmsghdr>?) {
        let message = scratch.withUnsafeMutableBytes { raw -> ArraySlice<UInt8> in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self), let header = build(base) else { return [] }
            return ArraySlice(raw.prefix(NetlinkMessage.align(Int(header.pointee.nlmsg_len))))
        }
        bytes.append(contentsOf: message)
        sequence &+= 1
    }
}
