import CNftables

/// One netlink message inside a receive buffer (the NLMSG_* macros Swift cannot import, re-implemented).
struct NetlinkMessage {
    /// The whole message, `nlmsg_len` bytes.
    let bytes: UnsafeRawBufferPointer

    static let headerLength = MemoryLayout<nlmsghdr>.size

    /// NLMSG_ALIGN.
    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    var length: Int { Int(bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
    var type: UInt16 { bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }
    var flags: UInt16 { bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self) }
    var sequence: UInt32 { bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
    var portID: UInt32 { bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self) }

    /// The header, for libnftnl's `*_nlmsg_parse` functions.
    var header: UnsafePointer<nlmsghdr>? {
        bytes.baseAddress?.assumingMemoryBound(to: nlmsghdr.self)
    }

    /// nfgenmsg.res_id of an nf_tables reply: the low 16 bits of the ruleset generation.
    var generationTag: UInt16? {
        guard bytes.count >= Self.headerLength + 4 else { return nil }
        return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: Self.headerLength + 2, as: UInt16.self))
    }

    /// For NLMSG_ERROR: 0 for an acknowledgement, else the (positive) errno.
    var errorCode: Int32? {
        guard type == UInt16(NLMSG_ERROR), bytes.count >= Self.headerLength + 4 else { return nil }
        return -bytes.loadUnaligned(fromByteOffset: Self.headerLength, as: Int32.self)
    }

    /// For NLMSG_ERROR: the sequence number of the message it answers.
    var erroredSequence: UInt32? {
        guard type == UInt16(NLMSG_ERROR), bytes.count >= Self.headerLength + 4 + Self.headerLength else { return nil }
        return bytes.loadUnaligned(fromByteOffset: Self.headerLength + 4 + 8, as: UInt32.self)
    }

    /// For NLMSG_DONE: the errno a failed dump ends with (0 when it succeeded).
    var doneErrorCode: Int32 {
        guard bytes.count >= Self.headerLength + 4 else { return 0 }
        return -bytes.loadUnaligned(fromByteOffset: Self.headerLength, as: Int32.self)
    }

    /// The kernel's extended-ack text (NLMSGERR_ATTR_MSG), when NETLINK_EXT_ACK is on.
    var extendedAckText: String? {
        guard type == UInt16(NLMSG_ERROR), flags & UInt16(NLM_F_ACK_TLVS) != 0,
              bytes.count >= Self.headerLength + 4 + Self.headerLength else { return nil }
        let echoedLength = Int(bytes.loadUnaligned(fromByteOffset: Self.headerLength + 4, as: UInt32.self))
        let capped = flags & UInt16(NLM_F_CAPPED) != 0
        var offset = Self.headerLength + Self.align(4 + (capped ? Self.headerLength : echoedLength))
        while offset + 4 <= bytes.count {
            let attributeLength = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let attributeType = bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3FFF
            guard attributeLength >= 4, offset + attributeLength <= bytes.count else { return nil }
            if attributeType == UInt16(NLMSGERR_ATTR_MSG.rawValue) {
                let text = bytes[(offset + 4)..<(offset + attributeLength)].prefix { $0 != 0 }
                return String(decoding: text, as: UTF8.self)
            }
            offset += Self.align(attributeLength)
        }
        return nil
    }

    /// The well-formed messages of `buffer`, in order (NLMSG_OK / NLMSG_NEXT).
    static func messages(in buffer: UnsafeRawBufferPointer) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset + headerLength <= buffer.count {
            let length = Int(buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            guard length >= headerLength, offset + length <= buffer.count else { break }
            messages.append(NetlinkMessage(bytes: UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + length)])))
            offset += align(length)
        }
        return messages
    }
}
