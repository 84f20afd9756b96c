import NIOCore

extension ProxyHeaderDecoder {
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let lineFeed = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")

    /// Decodes a v1 line (section 2.1):
    ///
    ///     PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n
    ///     PROXY TCP6 2001:db8::1 2001:db8::7 56324 443\r\n
    ///     PROXY UNKNOWN\r\n
    ///
    /// Nothing is decoded before the CRLF, which must come within 107 bytes; a CR or LF on its
    /// own fails at once. After `UNKNOWN` anything up to the CRLF is ignored, as the
    /// specification requires; the header then has command `.proxy`, transport
    /// `.unspecified` and no addresses, meaning "use the real connection's endpoints".
    ///
    /// - Returns: the header and its length, CRLF included; nil while bytes are missing.
    static func decodeV1(_ buffer: ByteBuffer) throws(ProxyHeaderError) -> (header: ProxyHeader, length: Int)? {
        guard try Self.matchSignature(Self.v1Signature, in: buffer) else {
            return nil
        }
        let available = min(buffer.readableBytes, Self.v1MaximumLineLength)
        guard let received = buffer.viewBytes(at: buffer.readerIndex, length: available) else {
            return nil
        }
        var lineLength: Int? = nil
        var previous: UInt8 = 0
        for (offset, byte) in received.enumerated() {
            if previous == Self.carriageReturn {
                guard byte == Self.lineFeed else {
                    throw .malformedV1
                }
                lineLength = offset + 1
                break
            }
            guard byte != Self.lineFeed else {
                throw .malformedV1
            }
            previous = byte
        }
        guard let lineLength else {
            if available == Self.v1MaximumLineLength {
                throw .v1TooLong
            }
            return nil
        }

        let signatureLength = Self.v1Signature.count
        let fieldsLength = lineLength - signatureLength - 2
        guard let fields = buffer.getBytes(at: buffer.readerIndex + signatureLength, length: fieldsLength) else {
            return nil
        }
        return (try Self.parseV1Fields(fields[...]), lineLength)
    }

    /// Parses what follows `PROXY ` up to the CRLF.
    private static func parseV1Fields(_ line: ArraySlice<UInt8>) throws(ProxyHeaderError) -> ProxyHeader {
        if line.starts(with: "UNKNOWN".utf8) {
            guard line.count == 7 || line[line.startIndex + 7] == Self.space else {
                throw .malformedV1
            }
            return ProxyHeader(version: .v1, command: .proxy, transport: .unspecified, source: nil, destination: nil)
        }
        let isIPv6: Bool
        if line.starts(with: "TCP4 ".utf8) {
            isIPv6 = false
        } else if line.starts(with: "TCP6 ".utf8) {
            isIPv6 = true
        } else {
            throw .malformedV1
        }
        let fields = line.dropFirst(5).split(separator: Self.space, omittingEmptySubsequences: false)
        guard fields.count == 4 else {
            throw .malformedV1
        }
        let parse = isIPv6 ? IPAddressText.parseIPv6 : IPAddressText.parseIPv4
        guard let source = parse(fields[0]), let destination = parse(fields[1]),
            let sourcePort = IPAddressText.parsePort(fields[2]),
            let destinationPort = IPAddressText.parsePort(fields[3])
        else {
            throw .malformedV1
        }
        return ProxyHeader(
            version: .v1,
            command: .proxy,
            transport: .stream,
            source: try Self.socketAddress(source, port: sourcePort),
            destination: try Self.socketAddress(destination, port: destinationPort)
        )
    }

    private static func socketAddress(_ packed: [UInt8], port: Int) throws(ProxyHeaderError) -> SocketAddress {
        guard let address = try? SocketAddress(packedIPAddress: ByteBuffer(bytes: packed), port: port) else {
            throw .malformedV1
        }
        return address
    }
}
