import FuzzSupport
import NIOCore
import TailgateWire

/// What libFuzzer runs on each input: the input is the first bytes an HTTP client sends to an http listener.
///
/// Parses them as the admission does, whole and growing in 2 or 3 chunks: the answer for the whole input
/// is the one the chunks end with (a head found earlier is the same head); the reader never moves; a head's
/// `byteCount` ends with an empty line inside the input and within the limit; its Host is normalized
/// (lower case, no port, no trailing dot) and parsing that many bytes alone gives the same head.
func fuzzHTTPRequestHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzerDriver.bytes(data, size)
    let parser = HTTPRequestHeadParser(limit: 8_192)
    let whole = parse(ByteBuffer(bytes: bytes), parser)
    var buffer = ByteBuffer()
    var chunked: Outcome = .needMoreData
    for chunk in ChunkPlan(bytes).chunks {
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[chunk]))
        chunked = parse(buffer, parser)
        if chunked != .needMoreData { break }
    }
    Invariant.check(whole == chunked, "whole: \(whole); in chunks: \(chunked)")
    if case .head(let head) = whole {
        Invariant.check(head.byteCount > 0 && head.byteCount <= size && head.byteCount <= parser.limit, "head of \(head.byteCount) bytes")
        Invariant.check(bytes[head.byteCount - 1] == UInt8(ascii: "\n"), "a head ends with a line feed")
        if let host = head.host {
            Invariant.check(host == host.lowercased() && !host.hasSuffix(".") && !host.isEmpty, "host \(host) is not normalized")
        }
        let exact = parse(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<head.byteCount])), parser)
        Invariant.check(exact == whole, "the head's own bytes give \(exact)")
    }
    return 0
}

enum Outcome: Equatable {
    case needMoreData
    case head(HTTPRequestHead)
    case error(HTTPRequestHeadError)
}

func parse(_ buffer: ByteBuffer, _ parser: HTTPRequestHeadParser) -> Outcome {
    let before = buffer
    defer { Invariant.check(buffer == before && buffer.readerIndex == before.readerIndex, "the parser moved the buffer") }
    do {
        return try parser.parse(buffer).map(Outcome.head) ?? .needMoreData
    } catch {
        return .error(error)
    }
}

FuzzerDriver.run(fuzzHTTPRequestHead)
