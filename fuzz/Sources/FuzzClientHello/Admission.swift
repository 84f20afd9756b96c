import FuzzSupport
import NIOCore
import TailgateWire

/// What the proxy decides from a connection's first bytes, the way TailgateProxy's
/// `AdmissionStateMachine` calls the parsers: an optional PROXY header, consumed from the
/// buffer once complete, then the ClientHello sniffed in place from the same buffer, which
/// grows as bytes arrive. Every call checks what the parsers promise about the buffer.
struct Admission {
    enum Decision: Equatable {
        case needMoreData
        case admit(ClientHelloInfo, proxyHeader: ProxyHeader?)
        case rejectProxyHeader(ProxyHeaderError)
        case rejectClientHello(ClientHelloError, proxyHeader: ProxyHeader?)
    }

    /// The parsers as the proxy constructs them.
    private let sniffer = ClientHelloSniffer()
    private let decoder = ProxyHeaderDecoder()
    private var awaitingProxyHeader: Bool
    private var proxyHeader: ProxyHeader?

    init(expectProxyHeader: Bool) {
        self.awaitingProxyHeader = expectProxyHeader
        self.proxyHeader = nil
    }

    /// Feeds `chunks` of `bytes` one after the other into one growing buffer, as the
    /// proxy's handler does, and returns the first decision other than `.needMoreData`.
    static func decide(_ bytes: UnsafeRawBufferPointer, chunks: [Range<Int>], expectProxyHeader: Bool) -> Decision {
        var admission = Admission(expectProxyHeader: expectProxyHeader)
        var buffered = ByteBuffer()
        for chunk in chunks {
            buffered.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[chunk]))
            let decision = admission.process(&buffered)
            if decision != .needMoreData {
                return decision
            }
        }
        return .needMoreData
    }

    /// Looks at everything received so far; consumes a PROXY header when one completes.
    mutating func process(_ buffer: inout ByteBuffer) -> Decision {
        if self.awaitingProxyHeader {
            let before = buffer
            do {
                guard let header = try self.decoder.decode(&buffer) else {
                    Invariant.check(buffer == before && buffer.readerIndex == before.readerIndex, "decode moved the buffer and needs more data")
                    return .needMoreData
                }
                Self.checkConsumedHeader(header, before: before, after: buffer, decoder: self.decoder)
                self.proxyHeader = header
                self.awaitingProxyHeader = false
            } catch {
                Invariant.check(buffer == before && buffer.readerIndex == before.readerIndex, "decode moved the buffer and threw \(error)")
                return .rejectProxyHeader(error)
            }
        }
        let before = buffer
        do {
            guard let info = try self.sniffer.sniff(buffer) else {
                return .needMoreData
            }
            Invariant.check(buffer == before && buffer.readerIndex == before.readerIndex, "sniff changed the buffer")
            Self.checkClientHello(info, in: buffer, sniffer: self.sniffer)
            return .admit(info, proxyHeader: self.proxyHeader)
        } catch {
            return .rejectClientHello(error, proxyHeader: self.proxyHeader)
        }
    }

    /// A decoded header took the bytes from the old to the new reader index, no more and no less.
    private static func checkConsumedHeader(
        _ header: ProxyHeader,
        before: ByteBuffer,
        after: ByteBuffer,
        decoder: ProxyHeaderDecoder
    ) {
        let length = after.readerIndex - before.readerIndex
        Invariant.check(length > 0 && length <= before.readableBytes, "decode consumed \(length) of \(before.readableBytes) bytes")
        Invariant.check(after.writerIndex == before.writerIndex, "decode wrote to the buffer")
        guard var alone = before.getSlice(at: before.readerIndex, length: length),
            var short = before.getSlice(at: before.readerIndex, length: length - 1)
        else {
            Invariant.check(false, "the consumed bytes are not in the buffer")
            return
        }
        let again = try? decoder.decode(&alone)
        Invariant.check(again == header && alone.readableBytes == 0, "the header's bytes alone decode differently")
        let partial = Result { () throws(ProxyHeaderError) in try decoder.decode(&short) }
        Invariant.check((try? partial.get()) == .some(nil), "the header less its last byte decodes as \(partial)")
    }

    /// The ClientHello's records are in the buffer, within the sniffer's limit, and alone
    /// give the same result; one byte less is incomplete; the server name is normalized.
    private static func checkClientHello(_ info: ClientHelloInfo, in buffer: ByteBuffer, sniffer: ClientHelloSniffer) {
        let count = info.byteCount
        Invariant.check(count >= 5 + 4 + 41 && count <= buffer.readableBytes, "byteCount \(count) of \(buffer.readableBytes) bytes")
        Invariant.check(count <= sniffer.maxBytes, "byteCount \(count) exceeds maxBytes \(sniffer.maxBytes)")
        if let records = buffer.getSlice(at: buffer.readerIndex, length: count),
            let short = buffer.getSlice(at: buffer.readerIndex, length: count - 1)
        {
            let alone = try? sniffer.sniff(records)
            Invariant.check(alone == info, "the records alone sniff as \(String(describing: alone)), not \(info)")
            let partial = Result { () throws(ClientHelloError) in try sniffer.sniff(short) }
            Invariant.check((try? partial.get()) == .some(nil), "the records less one byte sniff as \(partial)")
        }
        if let name = info.serverName {
            Invariant.check(Self.isNormalizedHostName(name), "server name \(name.debugDescription) is not a normalized host name")
        }
    }

    /// Lowercase labels of 1 to 63 letters, digits, hyphens or underscores, at most 253 bytes, no trailing dot.
    private static func isNormalizedHostName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else {
            return false
        }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            (1...63).contains(label.count)
                && label.allSatisfy { byte in
                    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                }
        }
    }
}
