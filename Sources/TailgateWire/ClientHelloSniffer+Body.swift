extension ClientHelloSniffer {
    /// What the body of a ClientHello yielded.
    struct Body {
        var legacyVersion: UInt16
        var serverName: String?
        var alpn: [String]
    }

    /// The extension type of `server_name` (RFC 6066 §3).
    static let serverNameExtension = 0

    /// The extension type of `application_layer_protocol_negotiation` (RFC 7301 §3.1).
    static let alpnExtension = 16

    /// Parses a ClientHello body that ends at handshake position `end` (RFC 8446 §4.1.2):
    ///
    ///     struct {
    ///         ProtocolVersion legacy_version;
    ///         Random random;
    ///         opaque legacy_session_id<0..32>;
    ///         CipherSuite cipher_suites<2..2^16-2>;
    ///         opaque legacy_compression_methods<1..2^8-1>;
    ///         Extension extensions<8..2^16-1>;
    ///     } ClientHello;
    ///
    /// A TLS 1.2 ClientHello may end after the compression methods (RFC 5246 §7.4.1.2).
    /// Every length is checked against what encloses it before anything is skipped.
    static func parseBody(reader: inout HandshakeReader, end: Int) throws(ClientHelloError) -> Body? {
        guard let legacyVersion = try reader.readLength(byteCount: 2), try reader.skip(32) else {
            return nil
        }
        guard let sessionIDLength = try reader.readLength(byteCount: 1) else {
            return nil
        }
        // At least a cipher suite and a compression method, with their lengths, must follow.
        guard sessionIDLength <= 32, sessionIDLength + 2 + 2 + 1 + 1 <= end - reader.position else {
            throw .malformed
        }
        guard try reader.skip(sessionIDLength), let cipherSuitesLength = try reader.readLength(byteCount: 2) else {
            return nil
        }
        guard cipherSuitesLength >= 2, cipherSuitesLength % 2 == 0, cipherSuitesLength + 1 + 1 <= end - reader.position
        else {
            throw .malformed
        }
        guard try reader.skip(cipherSuitesLength), let compressionLength = try reader.readLength(byteCount: 1) else {
            return nil
        }
        guard compressionLength >= 1, compressionLength <= end - reader.position else {
            throw .malformed
        }
        guard try reader.skip(compressionLength) else {
            return nil
        }

        var body = Body(legacyVersion: UInt16(legacyVersion), serverName: nil, alpn: [])
        if reader.position == end {
            return body
        }
        guard end - reader.position >= 2 else {
            throw .malformed
        }
        guard let extensionsLength = try reader.readLength(byteCount: 2) else {
            return nil
        }
        guard extensionsLength == end - reader.position else {
            throw .malformed
        }

        var sawServerName = false
        var sawALPN = false
        while reader.position < end {
            guard end - reader.position >= 4 else {
                throw .malformed
            }
            guard let type = try reader.readLength(byteCount: 2), let length = try reader.readLength(byteCount: 2)
            else {
                return nil
            }
            guard length <= end - reader.position else {
                throw .malformed
            }
            let extensionEnd = reader.position + length
            switch type {
            case Self.serverNameExtension:
                // RFC 8446 §4.2: no extension type may appear twice.
                guard !sawServerName else {
                    throw .malformed
                }
                sawServerName = true
                guard let name = try Self.parseServerName(reader: &reader, end: extensionEnd) else {
                    return nil
                }
                body.serverName = name
            case Self.alpnExtension:
                guard !sawALPN else {
                    throw .malformed
                }
                sawALPN = true
                guard let protocols = try Self.parseALPN(reader: &reader, end: extensionEnd) else {
                    return nil
                }
                body.alpn = protocols
            default:
                guard try reader.skip(length) else {
                    return nil
                }
            }
        }
        return body
    }
}
