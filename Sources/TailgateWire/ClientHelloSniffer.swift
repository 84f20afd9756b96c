import NIOCore

/// Finds the server name and ALPN protocols of a TLS ClientHello at the start of a stream,
/// without consuming it, so that the bytes can be relayed untouched afterwards.
///
/// The sniffer is incremental: feed it everything received so far, and it answers nil until
/// the whole ClientHello has arrived. It reassembles a ClientHello fragmented over several
/// handshake records (RFC 8446 §5.1) and throws as soon as the bytes received cannot start a
/// valid ClientHello of at most `maxBytes` bytes of records. Each call parses from the start,
/// in time linear in the bytes it looks at, copying only the server name and ALPN names.
public struct ClientHelloSniffer: Sendable {
    /// The most bytes of TLS records, headers included, that may hold a ClientHello.
    public let maxBytes: Int

    /// The smallest ClientHello body: version, random, empty session id, one cipher suite,
    /// one compression method, no extensions.
    static let minimumBodyLength = 2 + 32 + 1 + 2 + 2 + 1 + 1

    /// Creates a sniffer that rejects ClientHellos whose records exceed `maxBytes` bytes.
    public init(maxBytes: Int = 16_384) {
        self.maxBytes = maxBytes
    }

    /// Looks at all readable bytes of `buffer`, never moving its reader index.
    ///
    /// - Returns: nil while more bytes are needed; the information once the whole ClientHello
    ///   is present. Bytes after the records holding the ClientHello are ignored.
    /// - Throws: ``ClientHelloError`` as soon as the bytes cannot be a valid ClientHello; a wrong
    ///   first byte is reported with one byte, a too large announced length as soon as it is read.
    public func sniff(_ buffer: ByteBuffer) throws(ClientHelloError) -> ClientHelloInfo? {
        let result = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(ClientHelloError) in try self.sniff(bytes: bytes) }
        }
        return try result.get()
    }

    /// Parses the received bytes in place; `bytes` is only read while this call lasts.
    private func sniff(bytes: UnsafeRawBufferPointer) throws(ClientHelloError) -> ClientHelloInfo? {
        var reader = HandshakeReader(bytes: bytes, maxBytes: self.maxBytes)

        guard let messageType = try reader.readByte() else {
            return nil
        }
        guard messageType == 1 else {
            throw .notClientHello
        }
        guard let bodyLength = try reader.readLength(byteCount: 3) else {
            return nil
        }
        guard bodyLength >= Self.minimumBodyLength else {
            throw .malformed
        }
        // The handshake message and at least one record header must fit.
        guard HandshakeReader.recordHeaderLength + reader.position + bodyLength <= self.maxBytes else {
            throw .tooLarge
        }
        try reader.endMessage(at: reader.position + bodyLength)

        guard let hello = try Self.parseBody(reader: &reader, end: reader.position + bodyLength) else {
            return nil
        }
        // `endMessage` saw to it that no record reaches past the message.
        assert(reader.isAtRecordBoundary, "the ClientHello ends inside a record")
        return ClientHelloInfo(
            serverName: hello.serverName,
            alpn: hello.alpn,
            legacyVersion: hello.legacyVersion,
            byteCount: reader.recordBytes
        )
    }
}
