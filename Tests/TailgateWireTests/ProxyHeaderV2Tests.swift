import NIOCore
import Testing

@testable import TailgateWire

@Suite struct ProxyHeaderV2Tests {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// A v2 header: signature, version and command, family and protocol, length, then `rest`.
    static func header(
        _ versionAndCommand: UInt8,
        _ familyAndProtocol: UInt8,
        _ rest: [UInt8],
        length: Int? = nil
    ) -> [UInt8] {
        signature + [versionAndCommand, familyAndProtocol] + u16(length ?? rest.count) + rest
    }

    static let ipv4Block: [UInt8] = [192, 0, 2, 1, 198, 51, 100, 7] + u16(56324) + u16(443)
    static let ipv6Block: [UInt8] =
        [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [1]
        + [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [7] + u16(56324) + u16(443)

    @Test func signatureIsTheOneOfTheSpecification() {
        #expect(ProxyHeaderDecoder.v2Signature == Self.signature)
        #expect(Array("\r\n\r\n\u{0}\r\nQUIT\n".utf8) == Self.signature)
    }

    @Test func tcpOverIPv4IsDecoded() throws {
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x21, 0x11, Self.ipv4Block))
        #expect(
            header
                == ProxyHeader(
                    version: .v2,
                    command: .proxy,
                    transport: .stream,
                    source: try address("192.0.2.1", 56324),
                    destination: try address("198.51.100.7", 443)
                )
        )
    }

    @Test func tcpOverIPv6IsDecoded() throws {
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x21, 0x21, Self.ipv6Block))
        #expect(header?.source == (try address("2001:db8::1", 56324)))
        #expect(header?.destination == (try address("2001:db8::7", 443)))
        #expect(header?.transport == .stream)
    }

    @Test func udpIsDecodedAsDatagram() throws {
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x21, 0x12, Self.ipv4Block))
        #expect(header?.transport == .datagram)
        #expect(header?.source == (try address("192.0.2.1", 56324)))
        #expect(try expectDecodedAtEverySplitPoint(Self.header(0x21, 0x22, Self.ipv6Block))?.transport == .datagram)
    }

    @Test func localWithoutAddressesIsDecoded() throws {
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x20, 0x00, []))
        #expect(
            header == ProxyHeader(version: .v2, command: .local, transport: .unspecified, source: nil, destination: nil)
        )
    }

    @Test func localIgnoresTheAddressesItCarries() throws {
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x20, 0x11, Self.ipv4Block))
        #expect(header?.command == .local)
        #expect(header?.source == nil)
        #expect(header?.destination == nil)
    }

    @Test func unspecifiedProxyHasNoAddressesAndSkipsItsTLVs() throws {
        let tlv: [UInt8] = [0x02] + u16(3) + Array("a.b".utf8)
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x21, 0x00, tlv))
        #expect(header?.source == nil)
        #expect(header?.authority == "a.b")
    }

    @Test(arguments: [0x31, 0x32] as [UInt8])
    func unixSocketAddressesAreSkipped(familyAndProtocol: UInt8) throws {
        let block = Array("/run/client.sock".utf8) + Array(repeating: 0, count: 92) + Array(repeating: 0, count: 108)
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x21, familyAndProtocol, block + [0x04, 0, 0]))
        #expect(header?.source == nil)
        #expect(header?.transport == (familyAndProtocol == 0x31 ? .stream : .datagram))
        #expect(header?.tlvs == [ProxyHeader.TLV(type: 0x04, value: ByteBuffer())])
    }

    @Test func tlvsAreKeptInOrderWithNoopAndCustomTypes() throws {
        let tlvs: [UInt8] =
            [0x04] + u16(2) + [0, 0] + [0xE0] + u16(1) + [0x2A] + [0x02] + u16(11) + Array("example.com".utf8)
        let header = try expectDecodedAtEverySplitPoint(Self.header(0x21, 0x11, Self.ipv4Block + tlvs))
        #expect(header?.tlvs.map(\.type) == [0x04, 0xE0, 0x02])
        #expect(header?.tlvs[1].value == ByteBuffer(bytes: [0x2A]))
        #expect(header?.authority == "example.com")
    }

    @Test(arguments: ["haproxy-v2-tcp4-authority-crc32c.bin", "haproxy-v2-tcp6-authority-crc32c.bin"])
    func haproxyHeaderWithAuthorityAndChecksumIsDecoded(file: String) throws {
        let bytes = try Capture.bytes(named: file)
        let header = try #require(try expectDecodedAtEverySplitPoint(bytes))
        let loopback = file.contains("tcp6") ? "::1" : "127.0.0.1"
        #expect(header.command == .proxy)
        #expect(header.source?.ipAddress == loopback)
        #expect(header.destination?.ipAddress == loopback)
        #expect(header.authority == "tailgate.example.test")
        #expect(header.tlvs.map(\.type) == [ProxyHeader.TLV.crc32cType, ProxyHeader.TLV.authorityType])
    }

    @Test func haproxyHeaderWithACorruptedByteFailsItsChecksum() throws {
        var bytes = try Capture.bytes(named: "haproxy-v2-tcp4-authority-crc32c.bin")
        bytes[bytes.count - 1] = UInt8(ascii: "x")
        expectProxyRejection(bytes, .malformedTLV)
    }

    @Test func checksumOfTheCRC32cCheckValueIsRight() {
        var checksum = CRC32C()
        checksum.update("123456789".utf8)
        #expect(checksum.value == 0xE306_9283)
    }

    @Test func lengthUpToTheLimitIsAcceptedAndBeyondIsTooLongAsSoonAsItIsRead() throws {
        let decoder = ProxyHeaderDecoder(maxV2Length: 100)
        let padding: [UInt8] = [0x04] + u16(100 - 12 - 3) + Array(repeating: 0, count: 100 - 12 - 3)
        try expectDecodedAtEverySplitPoint(Self.header(0x21, 0x11, Self.ipv4Block + padding), decoder: decoder)
        let tooLong = Self.header(0x21, 0x11, Self.ipv4Block + padding + [0x04, 0, 0])
        #expect(expectProxyRejection(tooLong, .v2TooLong, decoder: decoder) == 16)
        #expect(expectProxyRejection(Self.header(0x21, 0x11, [], length: 0xFFFF), .v2TooLong) == 16)
    }

    @Test func signatureWithAWrongByteIsNotProxyProtocolAtThatByte() {
        let valid = Self.header(0x21, 0x11, Self.ipv4Block)
        for index in 1..<12 {
            var bytes = valid
            bytes[index] ^= 0x20
            #expect(expectProxyRejection(bytes, .notProxyProtocol) == index + 1)
        }
    }

    @Test(arguments: [0x01, 0x11, 0x31, 0xF1] as [UInt8])
    func versionOtherThan2IsUnsupported(versionAndCommand: UInt8) {
        #expect(expectProxyRejection(Self.header(versionAndCommand, 0x11, Self.ipv4Block), .unsupportedVersion) == 13)
    }

    @Test(arguments: [0x22, 0x23, 0x2F] as [UInt8])
    func commandOtherThanLocalOrProxyIsUnsupported(versionAndCommand: UInt8) {
        #expect(expectProxyRejection(Self.header(versionAndCommand, 0x11, Self.ipv4Block), .unsupportedCommand) == 13)
    }

    @Test(arguments: [0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x30, 0x41, 0xF1, 0x1F] as [UInt8])
    func familyAndProtocolNotDefinedByTheSpecificationAreMalformed(familyAndProtocol: UInt8) {
        #expect(expectProxyRejection(Self.header(0x21, familyAndProtocol, Self.ipv4Block), .malformedV2) == 14)
        #expect(expectProxyRejection(Self.header(0x20, familyAndProtocol, Self.ipv4Block), .malformedV2) == 14)
    }

    @Test(arguments: [(0x11, 11), (0x12, 0), (0x21, 35), (0x21, 12), (0x31, 215)] as [(UInt8, Int)])
    func lengthShorterThanTheAddressesOfTheFamilyIsMalformed(familyAndProtocol: UInt8, length: Int) {
        let block = Array(repeating: UInt8(1), count: length)
        #expect(expectProxyRejection(Self.header(0x21, familyAndProtocol, block), .malformedV2) == 16)
        #expect(expectProxyRejection(Self.header(0x20, familyAndProtocol, block), .malformedV2) == 16)
    }

    @Test(arguments: [
        [0x04] as [UInt8],  // a TLV header cut short
        [0x04, 0x00],
        [0x04, 0x00, 0x01],  // a value overrunning the header
        [0x02] + u16(12) + Array("example.com".utf8),
        [0x04, 0x00, 0x00, 0x04],  // a trailing partial TLV
        [0x02] + u16(2) + [0xC3, 0x28],  // an authority that is not UTF-8
        [0x03] + u16(3) + [0, 0, 0],  // a checksum that is not 4 bytes
        [0x03] + u16(4) + [0, 0, 0, 0],  // a wrong checksum
    ])
    func tlvsNotExactlyFillingTheHeaderOrInvalidAreMalformed(tlvs: [UInt8]) {
        expectProxyRejection(Self.header(0x21, 0x11, Self.ipv4Block + tlvs), .malformedTLV)
    }
}
