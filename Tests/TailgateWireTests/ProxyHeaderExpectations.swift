import NIOCore
import TailgateWire
import Testing

/// Decodes `bytes` followed by `trailing`, split into two segments at every point.
///
/// Expects nil, with the reader index untouched, for every proper prefix of the header, and
/// the same header, consuming exactly `bytes`, at every split point.
///
/// - Returns: the header.
@discardableResult
func expectDecodedAtEverySplitPoint(
    _ bytes: [UInt8],
    trailing: [UInt8] = Array("GET / HTTP/1.1\r\n".utf8),
    decoder: ProxyHeaderDecoder = ProxyHeaderDecoder(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> ProxyHeader? {
    var whole = ByteBuffer(bytes: bytes + trailing)
    let header = try decoder.decode(&whole)
    #expect(header != nil, sourceLocation: sourceLocation)
    #expect(whole.readerIndex == bytes.count, sourceLocation: sourceLocation)
    for split in 0..<bytes.count {
        var buffer = ByteBuffer(bytes: bytes[..<split])
        #expect(try decoder.decode(&buffer) == nil, "prefix of \(split) bytes", sourceLocation: sourceLocation)
        #expect(buffer.readerIndex == 0, sourceLocation: sourceLocation)
        buffer.writeBytes(bytes[split...] + trailing)
        #expect(try decoder.decode(&buffer) == header, "split at \(split)", sourceLocation: sourceLocation)
        #expect(buffer.readableBytesView.elementsEqual(trailing), sourceLocation: sourceLocation)
    }
    return header
}

/// Expects `bytes` to be rejected with `error`, every prefix to need more bytes or throw the
/// same error, and the reader index to stay untouched.
///
/// - Returns: the length of the shortest prefix that throws.
@discardableResult
func expectProxyRejection(
    _ bytes: [UInt8],
    _ error: ProxyHeaderError,
    decoder: ProxyHeaderDecoder = ProxyHeaderDecoder(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> Int? {
    var firstFailure: Int? = nil
    for length in 0...bytes.count {
        var buffer = ByteBuffer(bytes: bytes[..<length])
        do {
            let header = try decoder.decode(&buffer)
            #expect(
                header == nil,
                "prefix of \(length) bytes yields \(String(describing: header))",
                sourceLocation: sourceLocation
            )
        } catch let thrown {
            #expect(thrown == error, "prefix of \(length) bytes", sourceLocation: sourceLocation)
            firstFailure = firstFailure ?? length
        }
        #expect(buffer.readerIndex == 0, sourceLocation: sourceLocation)
    }
    #expect(firstFailure != nil, "never threw \(error)", sourceLocation: sourceLocation)
    return firstFailure
}

/// An IP socket address for tests.
func address(_ ip: String, _ port: Int) throws -> SocketAddress {
    try SocketAddress(ipAddress: ip, port: port)
}
