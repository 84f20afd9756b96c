import NIOCore
import Testing

@testable import TailgateWire

@Suite struct ProxyHeaderRoundTripTests {
    static let endpoints: [(String, String?, String?)] = [
        ("IPv4", "192.0.2.1", "198.51.100.7"),
        ("IPv6", "2001:db8::1", "2001:db8:ffff::7"),
        ("IPv4-mapped", "::ffff:192.0.2.1", "::ffff:198.51.100.7"),
        ("no addresses", nil, nil),
        ("mixed families", "192.0.2.1", "2001:db8::1"),
    ]

    static func addresses(_ endpoints: (String, String?, String?)) throws -> (SocketAddress?, SocketAddress?) {
        (try endpoints.1.map { try address($0, 40000) }, try endpoints.2.map { try address($0, 443) })
    }

    @Test(arguments: 0..<endpoints.count)
    func v1HeaderDecodesToWhatWasEncoded(index: Int) throws {
        let (source, destination) = try Self.addresses(Self.endpoints[index])
        var buffer = ByteBuffer()
        ProxyHeaderEncoder.writeV1(source: source, destination: destination, into: &buffer)
        let header = try expectDecodedAtEverySplitPoint(Array(buffer.readableBytesView))
        let sameFamily = index < 3
        #expect(header?.version == .v1)
        #expect(header?.command == .proxy)
        #expect(header?.transport == (sameFamily ? .stream : .unspecified))
        #expect(header?.source == (sameFamily ? source?.unmappingIPv4() : nil))
        #expect(header?.destination == (sameFamily ? destination?.unmappingIPv4() : nil))
    }

    @Test(arguments: 0..<endpoints.count, [nil, "tailgate.example.test", "bücher.example"])
    func v2ProxyHeaderDecodesToWhatWasEncoded(index: Int, authority: String?) throws {
        let (source, destination) = try Self.addresses(Self.endpoints[index])
        var buffer = ByteBuffer()
        ProxyHeaderEncoder.writeV2(
            command: .proxy,
            source: source,
            destination: destination,
            authority: authority,
            into: &buffer
        )
        let header = try #require(try expectDecodedAtEverySplitPoint(Array(buffer.readableBytesView)))
        let sameFamily = index < 3
        #expect(header.version == .v2)
        #expect(header.command == .proxy)
        #expect(header.transport == (sameFamily ? .stream : .unspecified))
        #expect(header.source == (sameFamily ? source?.unmappingIPv4() : nil))
        #expect(header.destination == (sameFamily ? destination?.unmappingIPv4() : nil))
        #expect(header.authority == authority)
        #expect(header.tlvs.count == (authority == nil ? 0 : 1))
    }

    @Test(arguments: [nil, "tailgate.example.test"])
    func v2LocalHeaderDecodesWithoutAddresses(authority: String?) throws {
        var buffer = ByteBuffer()
        let source = try address("192.0.2.1", 1)
        ProxyHeaderEncoder.writeV2(
            command: .local,
            source: source,
            destination: source,
            authority: authority,
            into: &buffer
        )
        let header = try expectDecodedAtEverySplitPoint(Array(buffer.readableBytesView))
        #expect(header?.command == .local)
        #expect(header?.transport == .unspecified)
        #expect(header?.source == nil)
        #expect(header?.authority == authority)
    }

    @Test func twoHeadersInARowAreDecodedOneAfterTheOther() throws {
        var buffer = ByteBuffer()
        ProxyHeaderEncoder.writeV1(
            source: try address("192.0.2.1", 1),
            destination: try address("192.0.2.2", 2),
            into: &buffer
        )
        ProxyHeaderEncoder.writeV2(command: .local, source: nil, destination: nil, authority: "x", into: &buffer)
        let decoder = ProxyHeaderDecoder()
        #expect(try decoder.decode(&buffer)?.version == .v1)
        #expect(try decoder.decode(&buffer)?.authority == "x")
        #expect(buffer.readableBytes == 0)
        #expect(try decoder.decode(&buffer) == nil)
    }
}
