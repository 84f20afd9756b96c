import NIOCore

/// Decodes the PROXY protocol header at the start of a stream, version 1 or 2 as the first
/// byte says (haproxy's `doc/proxy-protocol.txt`, section 2).
///
/// The decoder is incremental: feed it everything received so far. It answers nil until the
/// whole header has arrived, and throws as soon as the bytes received cannot start a valid
/// header, for example on the first byte that differs from both signatures.
public struct ProxyHeaderDecoder: Sendable {
    /// The v1 signature, `PROXY` and its space.
    static let v1Signature: [UInt8] = Array("PROXY ".utf8)

    /// The 12-byte v2 signature.
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// The longest v1 line, CRLF included (`PROXY UNKNOWN` with two full IPv6 addresses and ports).
    static let v1MaximumLineLength = 107

    /// The fixed part of a v2 header: signature, version and command, family and protocol, length.
    static let v2PrefixLength = 16

    /// The most bytes a v2 header may have after its 16-byte fixed part.
    public let maxV2Length: Int

    /// Creates a decoder that rejects v2 headers announcing more than `maxV2Length` bytes after
    /// their 16-byte fixed part (at most 65,535 are possible).
    public init(maxV2Length: Int = 1_024) {
        self.maxV2Length = maxV2Length
    }

    /// Decodes the header at the reader index of `buffer`.
    ///
    /// - Returns: nil while more bytes are needed, leaving the reader index untouched; the header
    ///   once complete, after moving the reader index past exactly its bytes.
    /// - Throws: ``ProxyHeaderError`` as soon as the bytes cannot be a valid header; the reader
    ///   index is left untouched.
    public func decode(_ buffer: inout ByteBuffer) throws(ProxyHeaderError) -> ProxyHeader? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
            return nil
        }
        let decoded: (header: ProxyHeader, length: Int)?
        switch first {
        case Self.v2Signature[0]:
            decoded = try self.decodeV2(buffer)
        case Self.v1Signature[0]:
            decoded = try Self.decodeV1(buffer)
        default:
            throw .notProxyProtocol
        }
        guard let decoded else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: decoded.length)
        return decoded.header
    }

    /// Compares the readable bytes of `buffer` with `signature`, as far as they go.
    ///
    /// - Returns: true once the whole signature has arrived, false while part of it is missing.
    /// - Throws: ``ProxyHeaderError/notProxyProtocol`` on the first byte that differs.
    static func matchSignature(_ signature: [UInt8], in buffer: ByteBuffer) throws(ProxyHeaderError) -> Bool {
        for (offset, expected) in signature.enumerated() {
            guard let byte = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt8.self) else {
                return false
            }
            guard byte == expected else {
                throw .notProxyProtocol
            }
        }
        return true
    }
}
