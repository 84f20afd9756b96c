import FuzzSupport
import NIOCore
import TailgateWire

/// The properties of ``ProxyHeaderDecoder`` and ``ProxyHeaderEncoder`` that the fuzz target checks.
enum ProxyHeaderCheck {
    enum Outcome: Equatable {
        case needMoreData
        case header(ProxyHeader, length: Int)
        case error(ProxyHeaderError)
    }

    /// Feeds `chunks` of `bytes` into one growing buffer, decoding after each as the proxy
    /// does, until the decoder answers; checks that it moves the reader index exactly past
    /// the header it returns, and not at all otherwise.
    static func decode(_ bytes: UnsafeRawBufferPointer, chunks: [Range<Int>], decoder: ProxyHeaderDecoder) -> Outcome {
        var buffer = ByteBuffer()
        for chunk in chunks {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[chunk]))
            let outcome = Self.decodeOnce(&buffer, decoder: decoder)
            if outcome != .needMoreData {
                return outcome
            }
        }
        return .needMoreData
    }

    static func decodeOnce(_ buffer: inout ByteBuffer, decoder: ProxyHeaderDecoder) -> Outcome {
        let before = buffer
        do {
            guard let header = try decoder.decode(&buffer) else {
                Invariant.check(buffer == before && buffer.readerIndex == before.readerIndex, "decode moved the buffer and needs more data")
                return .needMoreData
            }
            let length = buffer.readerIndex - before.readerIndex
            Invariant.check(length > 0 && length <= before.readableBytes, "decode consumed \(length) of \(before.readableBytes) bytes")
            Invariant.check(buffer.writerIndex == before.writerIndex, "decode wrote to the buffer")
            return .header(header, length: length)
        } catch {
            Invariant.check(buffer == before && buffer.readerIndex == before.readerIndex, "decode moved the buffer and threw \(error)")
            return .error(error)
        }
    }

    /// What the specification and the decoder's documentation say a header looks like.
    static func checkShape(_ header: ProxyHeader, length: Int, decoder: ProxyHeaderDecoder) {
        Invariant.check((header.source == nil) == (header.destination == nil), "one address without the other: \(header)")
        switch header.version {
        case .v1:
            Invariant.check(length <= 107, "a v1 line of \(length) bytes")
            Invariant.check(header.command == .proxy && header.tlvs.isEmpty, "v1 with LOCAL or TLVs: \(header)")
            Invariant.check((header.transport == .stream) == (header.source != nil), "v1 transport and addresses disagree: \(header)")
            if let source = header.source, let destination = header.destination {
                Invariant.check(Self.sameFamily(source, destination), "v1 addresses of two families: \(header)")
            }
        case .v2:
            Invariant.check(length >= 16 && length <= 16 + decoder.maxV2Length, "a v2 header of \(length) bytes")
            if header.command == .local {
                Invariant.check(header.source == nil, "LOCAL with addresses: \(header)")
            }
            if let source = header.source, let destination = header.destination {
                Invariant.check(Self.sameFamily(source, destination), "v2 addresses of two families: \(header)")
                Invariant.check(header.transport != .unspecified, "v2 addresses without a transport: \(header)")
            }
            let tlvBytes = header.tlvs.reduce(0) { $0 + 3 + $1.value.readableBytes }
            Invariant.check(tlvBytes <= length - 16, "TLVs of \(tlvBytes) bytes in a \(length)-byte header")
        }
    }

    /// Writes the header again with the encoder and decodes that: the result is what the
    /// encoder keeps (addresses unmapped from IPv4-mapped IPv6, TCP, the authority TLV alone),
    /// and writing it once more gives the same bytes.
    static func checkRoundTrip(_ header: ProxyHeader, decoder: ProxyHeaderDecoder) {
        let encoded = Self.encode(header)
        var again = encoded
        let outcome = Self.decodeOnce(&again, decoder: decoder)
        let expected = Self.expectedAfterEncoding(header)
        guard case .header(let decoded, let length) = outcome else {
            Invariant.check(false, "\(header) encoded as \(Array(encoded.readableBytesView)) decodes as \(outcome)")
            return
        }
        Invariant.check(length == encoded.readableBytes, "the encoded header is \(encoded.readableBytes) bytes, decoded \(length)")
        Invariant.check(decoded == expected, "\(header) encoded and decoded is \(decoded), expected \(expected)")
        Invariant.check(Self.encode(decoded) == encoded, "\(decoded) encodes differently the second time")
    }

    private static func encode(_ header: ProxyHeader) -> ByteBuffer {
        var buffer = ByteBuffer()
        switch header.version {
        case .v1:
            ProxyHeaderEncoder.writeV1(source: header.source, destination: header.destination, into: &buffer)
        case .v2:
            ProxyHeaderEncoder.writeV2(
                command: header.command,
                source: header.source,
                destination: header.destination,
                authority: header.authority,
                into: &buffer
            )
        }
        return buffer
    }

    /// The header the encoder's documentation promises for `header`.
    private static func expectedAfterEncoding(_ header: ProxyHeader) -> ProxyHeader {
        var addresses: (SocketAddress, SocketAddress)? = nil
        if let source = header.source?.unmappingIPv4(), let destination = header.destination?.unmappingIPv4(),
            Self.sameFamily(source, destination)
        {
            addresses = (source, destination)
        }
        switch header.version {
        case .v1:
            return ProxyHeader(
                version: .v1,
                command: .proxy,
                transport: addresses == nil ? .unspecified : .stream,
                source: addresses?.0,
                destination: addresses?.1
            )
        case .v2:
            if header.command == .local {
                addresses = nil
            }
            var tlvs: [ProxyHeader.TLV] = []
            if let authority = header.authority {
                tlvs.append(ProxyHeader.TLV(type: ProxyHeader.TLV.authorityType, value: ByteBuffer(string: authority)))
            }
            return ProxyHeader(
                version: .v2,
                command: header.command,
                transport: addresses == nil ? .unspecified : .stream,
                source: addresses?.0,
                destination: addresses?.1,
                tlvs: tlvs
            )
        }
    }

    private static func sameFamily(_ first: SocketAddress, _ second: SocketAddress) -> Bool {
        switch (first, second) {
        case (.v4, .v4), (.v6, .v6):
            return true
        default:
            return false
        }
    }
}
