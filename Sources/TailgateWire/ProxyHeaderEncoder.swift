import NIOCore

/// Writes PROXY protocol headers (haproxy's `doc/proxy-protocol.txt`, section 2).
///
/// IPv4-mapped IPv6 addresses, as a dual-stack socket reports IPv4 peers, are written as
/// IPv4 (see `SocketAddress.unmappingIPv4()`). Addresses are copied as raw bytes; no
/// `String` is built.
public enum ProxyHeaderEncoder {
    /// Writes a v1 line: `PROXY TCP4 <source> <destination> <source port> <destination port>\r\n`,
    /// `TCP6` likewise, or `PROXY UNKNOWN\r\n` when either address is nil, a UNIX socket, or
    /// of another family than the other.
    ///
    /// IPv6 addresses are written in the RFC 5952 form (`2001:db8::1`).
    public static func writeV1(source: SocketAddress?, destination: SocketAddress?, into buffer: inout ByteBuffer) {
        guard let (source, destination) = Self.sameFamily(source, destination),
            let sourcePort = source.port, let destinationPort = destination.port
        else {
            buffer.writeStaticString("PROXY UNKNOWN\r\n")
            return
        }
        let isIPv4: Bool
        if case .v4 = source {
            isIPv4 = true
        } else {
            isIPv4 = false
        }
        let write = isIPv4 ? IPAddressText.writeIPv4 : IPAddressText.writeIPv6
        buffer.writeStaticString(isIPv4 ? "PROXY TCP4 " : "PROXY TCP6 ")
        source.withPackedIPAddress { write($0, &buffer) }
        buffer.writeStaticString(" ")
        destination.withPackedIPAddress { write($0, &buffer) }
        buffer.writeStaticString(" ")
        IPAddressText.writeDecimal(sourcePort, into: &buffer)
        buffer.writeStaticString(" ")
        IPAddressText.writeDecimal(destinationPort, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// Writes a v2 header: PROXY with TCP over IPv4 or IPv6, or LOCAL when `command` is
    /// `.local`; `UNSPEC` without addresses for LOCAL, and for PROXY when either address is nil,
    /// a UNIX socket, or of another family than the other.
    ///
    /// - Parameter authority: sent as a `PP2_TYPE_AUTHORITY` TLV when not nil, such as the
    ///   client's TLS server name. It must be shorter than 65,000 bytes in UTF-8.
    public static func writeV2(
        command: ProxyHeader.Command,
        source: SocketAddress?,
        destination: SocketAddress?,
        authority: String?,
        into buffer: inout ByteBuffer
    ) {
        let addresses = command == .proxy ? Self.sameFamily(source, destination) : nil
        let familyAndProtocol: UInt8
        let addressBlockLength: Int
        switch addresses?.source {
        case .v4?:
            familyAndProtocol = 0x11
            addressBlockLength = 12
        case .v6?:
            familyAndProtocol = 0x21
            addressBlockLength = 36
        case .unixDomainSocket?, nil:
            familyAndProtocol = 0x00
            addressBlockLength = 0
        }
        let authorityLength = authority?.utf8.count ?? 0
        precondition(authorityLength < 65_000, "a PROXY protocol authority must be shorter than 65,000 bytes")
        let length = addressBlockLength + (authority == nil ? 0 : 3 + authorityLength)

        buffer.reserveCapacity(minimumWritableBytes: ProxyHeaderDecoder.v2PrefixLength + length)
        // Prefix and address block are assembled on the stack and written at once (one capacity and
        // uniqueness check instead of a dozen).
        withUnsafeTemporaryAllocation(byteCount: ProxyHeaderDecoder.v2PrefixLength + 36, alignment: 8) { header in
            // The 12-byte signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A, version and command, family, length.
            header.storeBytes(of: UInt64(0x0D0A_0D0A_000D_0A51).bigEndian, toByteOffset: 0, as: UInt64.self)
            header.storeBytes(of: UInt32(0x5549_540A).bigEndian, toByteOffset: 8, as: UInt32.self)
            header[12] = command == .proxy ? 0x21 : 0x20
            header[13] = familyAndProtocol
            header.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 14, as: UInt16.self)
            var count = ProxyHeaderDecoder.v2PrefixLength
            if let (source, destination) = addresses, addressBlockLength > 0 {
                let addressLength = (addressBlockLength - 4) / 2
                let sourceBytes = UnsafeMutableRawBufferPointer(rebasing: header[count..<count + addressLength])
                let destinationBytes = UnsafeMutableRawBufferPointer(rebasing: header[count + addressLength..<count + 2 * addressLength])
                source.withPackedIPAddress { sourceBytes.copyMemory(from: $0) }
                destination.withPackedIPAddress { destinationBytes.copyMemory(from: $0) }
                count += 2 * addressLength
                header.storeBytes(of: UInt16(source.port ?? 0).bigEndian, toByteOffset: count, as: UInt16.self)
                header.storeBytes(of: UInt16(destination.port ?? 0).bigEndian, toByteOffset: count + 2, as: UInt16.self)
                count += 4
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: header[0..<count]))
        }
        if let authority {
            buffer.writeInteger(ProxyHeader.TLV.authorityType)
            buffer.writeInteger(UInt16(authorityLength))
            buffer.writeString(authority)
        }
    }

    /// Both addresses as IPv4 or both as IPv6, after unmapping IPv4-mapped ones; nil otherwise.
    private static func sameFamily(
        _ source: SocketAddress?,
        _ destination: SocketAddress?
    ) -> (source: SocketAddress, destination: SocketAddress)? {
        guard let source = source?.unmappingIPv4(), let destination = destination?.unmappingIPv4() else {
            return nil
        }
        switch (source, destination) {
        case (.v4, .v4), (.v6, .v6):
            return (source, destination)
        default:
            return nil
        }
    }
}
