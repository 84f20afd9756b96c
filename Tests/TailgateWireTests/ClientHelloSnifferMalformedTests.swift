import NIOCore
import Testing

@testable import TailgateWire

@Suite struct ClientHelloSnifferMalformedTests {
    let sniffer = ClientHelloSniffer()

    /// Expects `bytes` to throw `error`, and every prefix to need more bytes or throw the same.
    ///
    /// - Returns: the length of the shortest prefix that throws.
    @discardableResult
    func expectRejection(
        _ bytes: [UInt8],
        _ error: ClientHelloError,
        sniffer: ClientHelloSniffer = ClientHelloSniffer(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Int? {
        var firstFailure: Int? = nil
        for length in 0...bytes.count {
            do {
                let info = try sniffer.sniff(ByteBuffer(bytes: bytes[..<length]))
                #expect(
                    info == nil,
                    "prefix of \(length) bytes yields \(String(describing: info))",
                    sourceLocation: sourceLocation
                )
            } catch let thrown {
                #expect(thrown == error, "prefix of \(length) bytes", sourceLocation: sourceLocation)
                firstFailure = firstFailure ?? length
            }
        }
        #expect(firstFailure != nil, "never threw \(error)", sourceLocation: sourceLocation)
        return firstFailure
    }

    @Test func wellFormedBuilderHelloIsAccepted() throws {
        let bytes = ClientHelloBuilder().bytes
        let info = try self.sniffer.sniff(ByteBuffer(bytes: bytes))
        #expect(
            info
                == ClientHelloInfo(
                    serverName: "example.com",
                    alpn: ["h2", "http/1.1"],
                    legacyVersion: 0x0303,
                    byteCount: bytes.count
                )
        )
    }

    @Test func wrongContentTypeIsNotTLSFromTheFirstByte() {
        var bytes = ClientHelloBuilder().bytes
        bytes[0] = 23
        #expect(self.expectRejection(bytes, .notTLS) == 1)
    }

    @Test func plainHTTPIsNotTLSFromTheFirstByte() {
        #expect(self.expectRejection(Array("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".utf8), .notTLS) == 1)
    }

    @Test func sslVersion2StyleHelloIsNotTLSFromTheFirstByte() {
        // SSLv2-compatible CLIENT-HELLO: two-byte length with the high bit set, type 1, version 3.1.
        let bytes: [UInt8] =
            [0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10] + Array(repeating: 0, count: 37)
        #expect(self.expectRejection(bytes, .notTLS) == 1)
    }

    @Test(arguments: [[0x02, 0x00], [0x04, 0x01], [0x03, 0x10], [0x03, 0xFF]] as [[UInt8]])
    func recordVersionOtherThan03_0XIsNotTLS(version: [UInt8]) {
        var bytes = ClientHelloBuilder().bytes
        bytes.replaceSubrange(1..<3, with: version)
        #expect(self.expectRejection(bytes, .notTLS) == (version[0] == 3 ? 3 : 2))
    }

    @Test func recordLongerThan2To14IsRejectedWithItsHeader() {
        let bytes: [UInt8] = [22, 3, 1] + u16(16_385) + [1] + u24(16_381) + Array(repeating: 0, count: 100)
        #expect(self.expectRejection(bytes, .recordTooLarge) == 5)
    }

    @Test func recordOfExactly2To14BytesIsAllowed() throws {
        var builder = ClientHelloBuilder()
        builder.extensions = [.serverName("big.example"), .opaque(count: 0)]
        // A handshake of 2^14 + 2 bytes: one full record and one of 2 bytes.
        let padding = 16_384 + 2 - builder.handshake.count
        builder.extensions?[1] = .opaque(count: padding)
        let bytes = builder.bytes
        #expect(bytes.count == 5 + 16_384 + 5 + 2)
        let info = try ClientHelloSniffer(maxBytes: 20_000).sniff(ByteBuffer(bytes: bytes))
        #expect(info?.serverName == "big.example")
        #expect(info?.byteCount == bytes.count)
    }

    @Test func zeroLengthFirstRecordIsMalformed() {
        #expect(self.expectRejection([22, 3, 1, 0, 0] + ClientHelloBuilder().bytes, .malformed) == 5)
    }

    @Test func zeroLengthRecordBetweenFragmentsIsMalformed() {
        let handshake = ClientHelloBuilder().handshake
        let bytes =
            ClientHelloBuilder.record(Array(handshake[..<50])) + [22, 3, 1, 0, 0]
            + ClientHelloBuilder.record(Array(handshake[50...]))
        #expect(self.expectRejection(bytes, .malformed) == 60)
    }

    @Test(arguments: [20, 21, 23, 24, 0xFF] as [UInt8])
    func nonHandshakeRecordBetweenFragmentsIsAnUnexpectedRecord(type: UInt8) {
        let handshake = ClientHelloBuilder().handshake
        let bytes =
            ClientHelloBuilder.record(Array(handshake[..<50])) + ClientHelloBuilder.record([1], type: type)
            + ClientHelloBuilder.record(Array(handshake[50...]))
        #expect(self.expectRejection(bytes, .unexpectedRecord) == 56)
    }

    @Test func laterRecordWithAnotherMajorVersionIsMalformed() {
        let handshake = ClientHelloBuilder().handshake
        let bytes =
            ClientHelloBuilder.record(Array(handshake[..<50]))
            + ClientHelloBuilder.record(Array(handshake[50...]), version: 0x0203)
        #expect(self.expectRejection(bytes, .malformed) == 57)
    }

    @Test(arguments: [0, 2, 11, 16, 20] as [UInt8])
    func firstHandshakeMessageOtherThanClientHelloIsRejected(type: UInt8) {
        var bytes = ClientHelloBuilder().bytes
        bytes[5] = type
        #expect(self.expectRejection(bytes, .notClientHello) == 6)
    }

    @Test func announcedHandshakeLengthBeyondMaxBytesIsTooLargeBeforeTheBytesArrive() {
        let bytes: [UInt8] = [22, 3, 3] + u16(16_384) + [1] + u24(40_000)
        #expect(self.expectRejection(bytes, .tooLarge, sniffer: ClientHelloSniffer(maxBytes: 30_000)) == 9)
    }

    @Test func recordHeadersPushingTheHelloBeyondMaxBytesAreTooLarge() throws {
        var builder = ClientHelloBuilder()
        builder.fragmentLength = 10
        let bytes = builder.bytes
        #expect(try ClientHelloSniffer(maxBytes: bytes.count).sniff(ByteBuffer(bytes: bytes))?.byteCount == bytes.count)
        self.expectRejection(bytes, .tooLarge, sniffer: ClientHelloSniffer(maxBytes: bytes.count - 1))
    }

    @Test func firstRecordLongerThanMaxBytesIsTooLarge() {
        let bytes = ClientHelloBuilder().bytes
        #expect(self.expectRejection(bytes, .tooLarge, sniffer: ClientHelloSniffer(maxBytes: 100)) == 5)
    }

    @Test func handshakeTooShortForAClientHelloIsMalformed() {
        let body: [UInt8] = [3, 3] + Array(repeating: 0, count: 38)
        #expect(self.expectRejection(ClientHelloBuilder.record([1] + u24(body.count) + body), .malformed) == 9)
    }

    @Test func bytesAfterTheClientHelloInItsLastRecordAreMalformed() {
        let bytes = ClientHelloBuilder.record(ClientHelloBuilder().handshake + [0x0E, 0, 0, 0])
        // The record header and the handshake header together tell.
        #expect(self.expectRejection(bytes, .malformed) == 9)
    }

    @Test func laterRecordReachingPastTheClientHelloIsMalformedWithItsHeader() {
        let handshake = ClientHelloBuilder().handshake
        let bytes =
            ClientHelloBuilder.record(Array(handshake[..<50]))
            + ClientHelloBuilder.record(Array(handshake[50...]) + [0x0E, 0, 0, 0])
        #expect(self.expectRejection(bytes, .malformed) == 60)
    }

    @Test func handshakeLongerThanItsRecordsDataNeedsMoreBytes() throws {
        // The records announce less than the handshake length: the next record is awaited.
        let handshake = ClientHelloBuilder().handshake
        #expect(
            try self.sniffer.sniff(ByteBuffer(bytes: ClientHelloBuilder.record(Array(handshake.dropLast())))) == nil
        )
    }

    @Test func clientHelloWithoutExtensionsIsAccepted() throws {
        var builder = ClientHelloBuilder()
        builder.extensions = nil
        builder.legacyVersion = 0x0301
        let bytes = builder.bytes
        #expect(
            try self.sniffer.sniff(ByteBuffer(bytes: bytes))
                == ClientHelloInfo(serverName: nil, alpn: [], legacyVersion: 0x0301, byteCount: bytes.count)
        )
    }

    @Test func emptyExtensionsBlockIsAccepted() throws {
        var builder = ClientHelloBuilder()
        builder.extensions = []
        #expect(try self.sniffer.sniff(ByteBuffer(bytes: builder.bytes))?.serverName == nil)
    }

    @Test func sessionIDLongerThan32BytesIsMalformed() {
        var builder = ClientHelloBuilder()
        builder.sessionID = Array(repeating: 1, count: 33)
        #expect(self.expectRejection(builder.bytes, .malformed) == 5 + 4 + 2 + 32 + 1)
    }

    @Test(
        arguments: [
            // A session id, cipher suites, compression methods overrunning the ClientHello: each is
            // rejected with the last byte of its length (record and handshake headers: 9 bytes).
            ([3, 3] + Array(repeating: 0, count: 32) + [32] + Array(repeating: 0, count: 6), 9 + 35),
            ([3, 3] + Array(repeating: 0, count: 32) + [0, 0, 4, 0x13, 0x01, 1, 0], 9 + 37),
            ([3, 3] + Array(repeating: 0, count: 32) + [0, 0, 2, 0x13, 0x01, 2, 0], 9 + 40),
        ] as [([UInt8], Int)]
    )
    func vectorReachingPastTheEndOfTheClientHelloIsMalformedWithItsLength(body: [UInt8], failingLength: Int) {
        #expect(body.count == ClientHelloSniffer.minimumBodyLength)
        let bytes = ClientHelloBuilder.record([1] + u24(body.count) + body)
        #expect(self.expectRejection(bytes, .malformed) == failingLength)
    }

    @Test(arguments: [[], [0x13], [0x13, 0x01, 0x13]] as [[UInt8]])
    func cipherSuitesOfOddOrZeroLengthAreMalformed(suites: [UInt8]) {
        var builder = ClientHelloBuilder()
        builder.cipherSuites = suites
        self.expectRejection(builder.bytes, .malformed)
    }

    @Test func noCompressionMethodIsMalformed() {
        var builder = ClientHelloBuilder()
        builder.compressionMethods = []
        self.expectRejection(builder.bytes, .malformed)
    }

    @Test(arguments: [-2, -1, 1, 2])
    func extensionsBlockLengthNotMatchingTheHelloIsMalformed(delta: Int) {
        var builder = ClientHelloBuilder()
        builder.extensions = [.serverName("example.com")]
        var handshake = builder.handshake
        let lengthIndex = 4 + 2 + 32 + 1 + 32 + 2 + 6 + 1 + 1
        let length = Int(handshake[lengthIndex]) << 8 | Int(handshake[lengthIndex + 1])
        handshake.replaceSubrange(lengthIndex..<lengthIndex + 2, with: u16(length + delta))
        self.expectRejection(ClientHelloBuilder.record(handshake), .malformed)
    }

    @Test func lengthsLeavingOneStrayByteBeforeTheExtensionsAreMalformed() {
        var builder = ClientHelloBuilder()
        builder.extensions = nil
        let handshake = builder.handshake
        let body = Array(handshake[4...]) + [0]
        self.expectRejection(ClientHelloBuilder.record([1] + u24(body.count) + body), .malformed)
    }

    @Test func extensionLongerThanTheBlockIsMalformed() {
        var builder = ClientHelloBuilder()
        builder.extensions = [.opaque(count: 10)]
        var bytes = builder.bytes
        let count = bytes.count
        bytes.replaceSubrange(count - 12..<count - 10, with: u16(11))
        self.expectRejection(bytes, .malformed)
    }

    @Test func extensionHeaderCutByTheBlockEndIsMalformed() {
        var builder = ClientHelloBuilder()
        builder.extensions = [.opaque(count: 0)]
        let handshake = builder.handshake
        let body = Array(handshake[4..<handshake.count - 6]) + u16(3) + [0, 51, 0]
        self.expectRejection(ClientHelloBuilder.record([1] + u24(body.count) + body), .malformed)
    }
}
