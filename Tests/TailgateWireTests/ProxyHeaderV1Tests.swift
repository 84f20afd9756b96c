import NIOCore
import Testing

@testable import TailgateWire

@Suite struct ProxyHeaderV1Tests {
    @Test func specificationExampleBeforeAnHTTPRequestIsDecodedAndConsumedAlone() throws {
        let line = Array("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".utf8)
        let request = Array("GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n".utf8)
        let header = try expectDecodedAtEverySplitPoint(line, trailing: request)
        #expect(
            header
                == ProxyHeader(
                    version: .v1,
                    command: .proxy,
                    transport: .stream,
                    source: try address("192.168.0.1", 56324),
                    destination: try address("192.168.0.11", 443)
                )
        )
    }

    @Test func longestTCP4LineOfTheSpecificationIsDecoded() throws {
        let line = Array("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n".utf8)
        #expect(line.count == 56)
        let header = try expectDecodedAtEverySplitPoint(line)
        #expect(header?.source == (try address("255.255.255.255", 65535)))
    }

    @Test func longestTCP6LineOfTheSpecificationIsDecoded() throws {
        let all = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        let line = Array("PROXY TCP6 \(all) \(all) 65535 65535\r\n".utf8)
        #expect(line.count == 104)
        let header = try expectDecodedAtEverySplitPoint(line)
        #expect(header?.source == (try address(all, 65535)))
        #expect(header?.destination == (try address(all, 65535)))
        #expect(header?.transport == .stream)
    }

    @Test(arguments: [
        ("2001:DB8::1", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
        ("64:ff9b::198.51.100.7", "64:ff9b::c633:6407"),
        ("fe80::1:2:3:4:5:6", "fe80:0:1:2:3:4:5:6"),
    ])
    func ipv6AddressFormsAreDecoded(text: String, canonical: String) throws {
        let header = try expectDecodedAtEverySplitPoint(Array("PROXY TCP6 \(text) ::1 1 0\r\n".utf8))
        #expect(header?.source == (try address(canonical, 1)))
        #expect(header?.destination == (try address("::1", 0)))
    }

    @Test func shortUnknownLineMeansUseTheRealEndpoints() throws {
        let header = try expectDecodedAtEverySplitPoint(Array("PROXY UNKNOWN\r\n".utf8))
        #expect(
            header == ProxyHeader(version: .v1, command: .proxy, transport: .unspecified, source: nil, destination: nil)
        )
    }

    @Test func worstCaseUnknownLineOf107BytesIsAcceptedAndItsFieldsIgnored() throws {
        let all = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        let line = Array("PROXY UNKNOWN \(all) \(all) 65535 65535\r\n".utf8)
        #expect(line.count == 107)
        let header = try expectDecodedAtEverySplitPoint(line)
        #expect(header?.source == nil)
        #expect(header?.transport == .unspecified)
    }

    @Test func anythingAfterUnknownBeforeTheCRLFIsIgnored() throws {
        let header = try expectDecodedAtEverySplitPoint(Array("PROXY UNKNOWN what  ever\u{1}\r\n".utf8))
        #expect(header?.source == nil)
    }

    @Test(arguments: ["haproxy-v1-tcp4.bin", "haproxy-v1-tcp6.bin"])
    func haproxyLineIsDecodedAndReencodedToTheSameBytes(file: String) throws {
        let bytes = try Capture.bytes(named: file)
        let header = try #require(try expectDecodedAtEverySplitPoint(bytes))
        let loopback = file.contains("tcp6") ? "::1" : "127.0.0.1"
        #expect(header.source?.ipAddress == loopback)
        #expect(header.destination?.ipAddress == loopback)
        var encoded = ByteBuffer()
        ProxyHeaderEncoder.writeV1(source: header.source, destination: header.destination, into: &encoded)
        #expect(Array(encoded.readableBytesView) == bytes)
    }

    @Test(arguments: [
        "PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",  // double space
        "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2  1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1  2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",  // trailing space
        "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",  // missing port
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",  // extra field
        "PROXY TCP4\r\n",
        "PROXY TCP4 \r\n",
        "PROXY \r\n",
        "PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY UNKNOWN4 1.2.3.4\r\n",
        "PROXY TCP4 256.0.2.1 192.0.2.2 1 2\r\n",  // bad IPv4 addresses
        "PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1.5 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.02.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0..1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 .192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1. 192.0.2.2 1 2\r\n",
        "PROXY TCP4 1234.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 0x7f.0.0.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 example.com 192.0.2.2 1 2\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",  // family mismatch
        "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",  // bad IPv6 addresses
        "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",
        "PROXY TCP6 12345::1 ::1 1 2\r\n",
        "PROXY TCP6 :1:2:3:4:5:6:7 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7: ::1 1 2\r\n",
        "PROXY TCP6 ::: ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7::8 ::1 1 2\r\n",
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        "PROXY TCP6 ::g ::1 1 2\r\n",
        "PROXY TCP6 ::1.2.3.4:5 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 [::1] ::1 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",  // bad ports
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 00 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1a 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 100000 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\u{0}\r\n",
    ])
    func lineNotFollowingTheGrammarIsMalformed(line: String) {
        expectProxyRejection(Array(line.utf8), .malformedV1)
    }

    @Test(arguments: [
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", "PROXY UNKNOWN\n", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",
    ])
    func lineEndingWithAnythingButCRLFIsMalformedAtOnce(line: String) {
        let bytes = Array(line.utf8)
        #expect(expectProxyRejection(bytes, .malformedV1) == bytes.count)
    }

    @Test func lineWithoutCRLFNeedsMoreBytesUntil107BytesAreThere() {
        let bytes = Array(("PROXY UNKNOWN " + String(repeating: "a", count: 93)).utf8)
        #expect(bytes.count == 107)
        #expect(expectProxyRejection(bytes, .v1TooLong) == 107)
    }

    @Test func lineOf108BytesIsTooLong() {
        let bytes = Array(("PROXY UNKNOWN " + String(repeating: "a", count: 92) + "\r\n").utf8)
        #expect(bytes.count == 108)
        #expect(expectProxyRejection(bytes, .v1TooLong) == 107)
    }

    @Test(arguments: [("GET / HTTP/1.1\r\n", 1), ("proxy TCP4", 1), ("PROXX", 5), ("PROXYTCP4", 6), ("PROX\r\n", 5)])
    func bytesNotStartingWithTheSignatureAreNotProxyProtocolFromTheFirstWrongByte(text: String, failingLength: Int) {
        #expect(expectProxyRejection(Array(text.utf8), .notProxyProtocol) == failingLength)
    }

    @Test func tlsClientHelloIsNotProxyProtocol() throws {
        let bytes = try Capture.bytes(named: "curl.bin")
        #expect(expectProxyRejection(bytes, .notProxyProtocol) == 1)
    }
}
