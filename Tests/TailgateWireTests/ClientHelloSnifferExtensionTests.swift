import NIOCore
import Testing

@testable import TailgateWire

@Suite struct ClientHelloSnifferExtensionTests {
    let sniffer = ClientHelloSniffer()

    func sniff(_ extensions: [ClientHelloBuilder.Extension]) throws(ClientHelloError) -> ClientHelloInfo? {
        var builder = ClientHelloBuilder()
        builder.extensions = extensions
        return try self.sniffer.sniff(ByteBuffer(bytes: builder.bytes))
    }

    @Test(arguments: [
        ("Example.COM", "example.com"),
        ("www.example.com.", "www.example.com"),
        ("_acme-challenge.Example.org", "_acme-challenge.example.org"),
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("192.0.2.1", "192.0.2.1"),
    ])
    func serverNameIsLowercasedWithoutTrailingDot(sent: String, expected: String) throws {
        #expect(try self.sniff([.serverName(sent)])?.serverName == expected)
    }

    @Test func longestHostNameIsAccepted() throws {
        let label = String(repeating: "a", count: 63)
        let name = [label, label, label, String(repeating: "b", count: 61)].joined(separator: ".")
        #expect(name.utf8.count == 253)
        #expect(try self.sniff([.serverName(name)])?.serverName == name)
        #expect(try self.sniff([.serverName(name + ".")])?.serverName == name)
    }

    @Test(arguments: [
        "", ".", "..", "a..b", ".example.com", "example.com..", "exa mple.com", "example.com/", "ex:ample",
        "bücher.example", "a\u{0}b", String(repeating: "a", count: 64) + ".com",
        [String](repeating: String(repeating: "a", count: 63), count: 4).joined(separator: "."),
    ])
    func serverNameThatIsNotAHostNameIsMalformed(name: String) {
        #expect(throws: ClientHelloError.malformed) { try self.sniff([.serverName(name)]) }
    }

    @Test func serverNameWithNonASCIIBytesIsMalformed() {
        #expect(throws: ClientHelloError.malformed) { try self.sniff([.serverName(bytes: [0x61, 0xFF, 0x62])]) }
    }

    @Test func serverNameWithAnotherNameTypeIsMalformed() {
        let entry: [UInt8] = [0x01] + u16(3) + Array("abc".utf8)
        let data = u16(entry.count) + entry
        #expect(throws: ClientHelloError.malformed) { try self.sniff([.init(type: 0, data: data)]) }
    }

    @Test func serverNameListWithTwoHostNamesIsMalformed() {
        let entry: [UInt8] = [0x00] + u16(3) + Array("abc".utf8)
        let data = u16(2 * entry.count) + entry + entry
        #expect(throws: ClientHelloError.malformed) { try self.sniff([.init(type: 0, data: data)]) }
    }

    @Test(arguments: [
        [] as [UInt8],  // no list
        [0x00],  // half a list length
        u16(0),  // empty list
        u16(4) + [0x00] + u16(3) + Array("abc".utf8),  // list longer than its entry
        u16(7) + [0x00] + u16(3) + Array("abc".utf8),  // list longer than the extension
        u16(6) + [0x00] + u16(4) + Array("abc".utf8),  // name longer than the list
        u16(6) + [0x00] + u16(2) + Array("abc".utf8),  // name shorter than the list
        u16(3) + [0x00] + u16(0),  // empty name
    ])
    func serverNameExtensionWithInconsistentLengthsIsMalformed(data: [UInt8]) {
        #expect(throws: ClientHelloError.malformed) { try self.sniff([.init(type: 0, data: data)]) }
    }

    @Test func duplicateServerNameExtensionIsMalformed() {
        #expect(throws: ClientHelloError.malformed) {
            try self.sniff([.serverName("a.example"), .serverName("b.example")])
        }
    }

    @Test func alpnNamesKeepTheClientsOrder() throws {
        let names = ["http/1.1", "h2", "acme-tls/1", "x"]
        #expect(try self.sniff([.alpn(names)])?.alpn == names)
    }

    @Test func alpnWithoutServerNameIsReported() throws {
        let info = try self.sniff([.opaque(type: 43, count: 3), .alpn(["h3"])])
        #expect(info?.serverName == nil)
        #expect(info?.alpn == ["h3"])
    }

    @Test func alpnGreaseValueIsDecodedWithReplacementCharacters() throws {
        // RFC 8701 reserves ALPN identifiers such as 0x5A 0x5A ... 0xFA 0xFA.
        let list: [UInt8] = [2, 0xFA, 0xFA, 2] + Array("h2".utf8)
        let alpn = try self.sniff([.init(type: 16, data: u16(list.count) + list)])?.alpn
        #expect(alpn == ["\u{FFFD}\u{FFFD}", "h2"])
    }

    @Test(arguments: [
        [] as [UInt8],  // no list
        [0x00],  // half a list length
        u16(0),  // empty list
        u16(1) + [0],  // one empty name
        u16(3) + [2] + Array("h2".utf8) + [0],  // list longer than the extension
        u16(4) + [2] + Array("h2".utf8) + [0],  // trailing empty name
        u16(3) + [3] + Array("h2".utf8),  // name longer than the list
        u16(4) + [2] + Array("h2".utf8),  // list longer than its names
    ])
    func alpnExtensionWithInconsistentLengthsOrEmptyNamesIsMalformed(data: [UInt8]) {
        #expect(throws: ClientHelloError.malformed) { try self.sniff([.init(type: 16, data: data)]) }
    }

    @Test func duplicateALPNExtensionIsMalformed() {
        #expect(throws: ClientHelloError.malformed) { try self.sniff([.alpn(["h2"]), .alpn(["h2"])]) }
    }

    @Test func serverNameAndALPNSplitAcrossOneByteRecordsAreReassembled() throws {
        var builder = ClientHelloBuilder()
        builder.extensions = [.opaque(count: 1216), .serverName("Split.Example"), .alpn(["h2", "http/1.1"])]
        builder.fragmentLength = 1
        let bytes = builder.bytes
        let info = try self.sniffer.sniff(ByteBuffer(bytes: bytes))
        #expect(
            info
                == ClientHelloInfo(
                    serverName: "split.example",
                    alpn: ["h2", "http/1.1"],
                    legacyVersion: 0x0303,
                    byteCount: bytes.count
                )
        )
    }
}
