import NIOCore

extension ProxyHeaderDecoder {
    /// Decodes a v2 header (section 2.2): the 12-byte signature, version 2 and the command,
    /// the family and protocol, the big-endian length of the rest, the address block of the
    /// family, then TLVs that must exactly fill the rest.
    ///
    /// Every byte of the fixed part is checked as soon as it arrives. The family and protocol
    /// byte must be one of those the specification lists: `0x00` (UNSPEC), `0x11`/`0x12`
    /// (TCP/UDP over IPv4), `0x21`/`0x22` (over IPv6), `0x31`/`0x32` (UNIX stream/datagram).
    /// A LOCAL header is checked the same way, but its addresses are not reported; neither
    /// are UNIX socket addresses. A CRC32c TLV, if any, is verified (section 2.2.3).
    ///
    /// - Returns: the header and its length; nil while bytes are missing.
    func decodeV2(_ buffer: ByteBuffer) throws(ProxyHeaderError) -> (header: ProxyHeader, length: Int)? {
        guard try Self.matchSignature(Self.v2Signature, in: buffer) else {
            return nil
        }
        let start = buffer.readerIndex
        guard let versionAndCommand = buffer.getInteger(at: start + 12, as: UInt8.self) else {
            return nil
        }
        guard versionAndCommand >> 4 == 2 else {
            throw .unsupportedVersion
        }
        let command: ProxyHeader.Command
        switch versionAndCommand & 0x0F {
        case 0x0: command = .local
        case 0x1: command = .proxy
        default: throw .unsupportedCommand
        }

        guard let familyAndProtocol = buffer.getInteger(at: start + 13, as: UInt8.self) else {
            return nil
        }
        let addressSize: Int
        switch familyAndProtocol >> 4 {
        case 0x0 where familyAndProtocol == 0x00: addressSize = 0
        case 0x1: addressSize = 4
        case 0x2: addressSize = 16
        case 0x3: addressSize = 108
        default: throw .malformedV2
        }
        let transport: ProxyHeader.TransportProtocol
        switch familyAndProtocol & 0x0F {
        case 0x0 where familyAndProtocol == 0x00: transport = .unspecified
        case 0x1: transport = .stream
        case 0x2: transport = .datagram
        default: throw .malformedV2
        }
        // IP addresses are followed by two ports; UNIX addresses are not.
        let addressBlockLength = addressSize == 108 ? 2 * 108 : addressSize == 0 ? 0 : 2 * addressSize + 4

        guard let announcedLength = buffer.getInteger(at: start + 14, as: UInt16.self) else {
            return nil
        }
        let length = Int(announcedLength)
        guard length <= self.maxV2Length else {
            throw .v2TooLong
        }
        guard length >= addressBlockLength else {
            throw .malformedV2
        }
        guard let block = buffer.getSlice(at: start + Self.v2PrefixLength, length: length) else {
            return nil
        }

        var header = ProxyHeader(version: .v2, command: command, transport: transport, source: nil, destination: nil)
        if command == .proxy, addressSize == 4 || addressSize == 16 {
            header.source = try Self.socketAddress(in: block, at: 0, size: addressSize, portAt: 2 * addressSize)
            header.destination = try Self.socketAddress(
                in: block,
                at: addressSize,
                size: addressSize,
                portAt: 2 * addressSize + 2
            )
        }
        header.tlvs = try Self.parseTLVs(
            in: buffer,
            from: start + Self.v2PrefixLength + addressBlockLength,
            to: start + Self.v2PrefixLength + length
        )
        return (header, Self.v2PrefixLength + length)
    }

    private static func socketAddress(
        in block: ByteBuffer,
        at offset: Int,
        size: Int,
        portAt portOffset: Int
    ) throws(ProxyHeaderError) -> SocketAddress {
        let start = block.readerIndex
        guard let packed = block.getSlice(at: start + offset, length: size),
            let port = block.getInteger(at: start + portOffset, as: UInt16.self),
            let address = try? SocketAddress(packedIPAddress: packed, port: Int(port))
        else {
            throw .malformedV2
        }
        return address
    }

    /// Walks the TLVs between indices `start` and `end` of `buffer`, where the header begins at
    /// the reader index; they must end exactly at `end`.
    private static func parseTLVs(
        in buffer: ByteBuffer,
        from start: Int,
        to end: Int
    ) throws(ProxyHeaderError) -> [ProxyHeader.TLV] {
        var tlvs: [ProxyHeader.TLV] = []
        var checksumIndex: Int? = nil
        var index = start
        while index < end {
            guard end - index >= 3,
                let type = buffer.getInteger(at: index, as: UInt8.self),
                let length = buffer.getInteger(at: index + 1, as: UInt16.self),
                Int(length) <= end - index - 3,
                let value = buffer.getSlice(at: index + 3, length: Int(length))
            else {
                throw .malformedTLV
            }
            switch type {
            case ProxyHeader.TLV.authorityType:
                guard String(validating: value.readableBytesView, as: UTF8.self) != nil else {
                    throw .malformedTLV
                }
            case ProxyHeader.TLV.crc32cType:
                guard length == 4, checksumIndex == nil else {
                    throw .malformedTLV
                }
                checksumIndex = index + 3
            default:
                break
            }
            tlvs.append(ProxyHeader.TLV(type: type, value: value))
            index += 3 + Int(length)
        }
        if let checksumIndex {
            try Self.verifyChecksum(in: buffer, end: end, checksumIndex: checksumIndex)
        }
        return tlvs
    }

    /// Checks the CRC32c of the header from the reader index of `buffer` to `end`, computed
    /// with the 4 checksum bytes at `checksumIndex` taken as zeros (section 2.2.3).
    private static func verifyChecksum(in buffer: ByteBuffer, end: Int, checksumIndex: Int) throws(ProxyHeaderError) {
        let start = buffer.readerIndex
        guard let expected = buffer.getInteger(at: checksumIndex, as: UInt32.self),
            let before = buffer.viewBytes(at: start, length: checksumIndex - start),
            let after = buffer.viewBytes(at: checksumIndex + 4, length: end - checksumIndex - 4)
        else {
            throw .malformedTLV
        }
        var checksum = CRC32C()
        checksum.update(before)
        checksum.update(repeatElement(0, count: 4))
        checksum.update(after)
        guard checksum.value == expected else {
            throw .malformedTLV
        }
    }
}
