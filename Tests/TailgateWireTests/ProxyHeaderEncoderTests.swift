import NIOCore
import Testing

@testable import TailgateWire

@Suite struct ProxyHeaderEncoderTests {
    func v1(_ source: SocketAddress?, _ destination: SocketAddress?) -> String {
        var buffer = ByteBuffer()
        ProxyHeaderEncoder.writeV1(source: source, destination: destination, into: &buffer)
        return String(buffer: buffer)
    }

    func v2(
        _ command: ProxyHeader.Command,
        _ source: SocketAddress?,
        _ destination: SocketAddress?,
        authority: String? = nil
    ) -> [UInt8] {
        var buffer = ByteBuffer()
        ProxyHeaderEncoder.writeV2(
            command: command,
            source: source,
            destination: destination,
            authority: authority,
            into: &buffer
        )
        return Array(buffer.readableBytesView)
    }

    @Test func v1LineForIPv4IsTheSpecificationExample() throws {
        let line = self.v1(try address("192.168.0.1", 56324), try address("192.168.0.11", 443))
        #expect(line == "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")
    }

    @Test(arguments: [
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("::1.2.3.4", "::102:304"),
    ])
    func v1LineForIPv6UsesTheRFC5952Form(address text: String, expected: String) throws {
        let line = self.v1(try address(text, 0), try address("::1", 65535))
        #expect(line == "PROXY TCP6 \(expected) ::1 0 65535\r\n")
    }

    @Test func v1LineForIPv4MappedAddressesIsTCP4() throws {
        let line = self.v1(try address("::ffff:192.0.2.1", 50000), try address("::ffff:198.51.100.7", 443))
        #expect(line == "PROXY TCP4 192.0.2.1 198.51.100.7 50000 443\r\n")
    }

    @Test func v1LineIsUnknownWithoutBothAddressesOfOneFamily() throws {
        let ipv4 = try address("192.0.2.1", 1)
        let ipv6 = try address("2001:db8::1", 2)
        let unix = try SocketAddress(unixDomainSocketPath: "/tmp/tailgate.sock")
        for (source, destination) in [(nil, ipv4), (ipv4, nil), (nil, nil), (ipv4, ipv6), (ipv6, ipv4), (unix, unix)] {
            #expect(self.v1(source, destination) == "PROXY UNKNOWN\r\n")
        }
    }

    @Test func v2HeaderForIPv4HasTheLayoutOfTheSpecification() throws {
        let bytes = self.v2(
            .proxy,
            try address("192.0.2.1", 56324),
            try address("198.51.100.7", 443),
            authority: "a.example"
        )
        let expected: [UInt8] =
            ProxyHeaderV2Tests.signature + [0x21, 0x11] + u16(12 + 3 + 9)
            + ProxyHeaderV2Tests.ipv4Block + [0x02] + u16(9) + Array("a.example".utf8)
        #expect(bytes == expected)
    }

    @Test func v2HeaderForIPv6CopiesTheAddressBytes() throws {
        let bytes = self.v2(.proxy, try address("2001:db8::1", 56324), try address("2001:db8::7", 443))
        #expect(bytes == ProxyHeaderV2Tests.signature + [0x21, 0x21] + u16(36) + ProxyHeaderV2Tests.ipv6Block)
    }

    @Test func v2HeaderForIPv4MappedAddressesIsIPv4() throws {
        let bytes = self.v2(.proxy, try address("::ffff:192.0.2.1", 56324), try address("::ffff:198.51.100.7", 443))
        #expect(bytes == ProxyHeaderV2Tests.signature + [0x21, 0x11] + u16(12) + ProxyHeaderV2Tests.ipv4Block)
    }

    @Test func v2LocalHeaderHasNoAddresses() throws {
        let bytes = self.v2(.local, try address("192.0.2.1", 1), try address("192.0.2.2", 2))
        #expect(bytes == ProxyHeaderV2Tests.signature + [0x20, 0x00, 0x00, 0x00])
    }

    @Test func v2HeaderIsUnspecifiedWithoutBothAddressesOfOneFamily() throws {
        let bytes = self.v2(.proxy, try address("192.0.2.1", 1), try address("2001:db8::1", 2), authority: "x")
        #expect(bytes == ProxyHeaderV2Tests.signature + [0x21, 0x00] + u16(4) + [0x02, 0x00, 0x01, UInt8(ascii: "x")])
    }

    @Test func v2HeaderIsAppendedAfterWhatTheBufferHolds() throws {
        var buffer = ByteBuffer(string: "before")
        ProxyHeaderEncoder.writeV2(command: .local, source: nil, destination: nil, authority: nil, into: &buffer)
        #expect(buffer.readableBytes == 6 + 16)
        #expect(buffer.getString(at: 0, length: 6) == "before")
    }
}
