import NIOCore
import Testing
@testable import TailgateConfig

@Test func prefixesMatchTheirAddressesAndMappedIPv4() throws {
    let tailnet = try IPNetwork.parse("100.64.0.0/10")
    #expect(tailnet.contains(try #require(IPAddress("100.101.1.5"))))
    #expect(tailnet.contains(try #require(IPAddress("::ffff:100.101.1.5"))))
    #expect(!tailnet.contains(try #require(IPAddress("100.128.0.1"))))
    let v6 = try IPNetwork.parse("fd7a:115c:a1e0::/48")
    #expect(v6.contains(try #require(IPAddress("fd7a:115c:a1e0:ab12::1"))))
    #expect(!v6.contains(try #require(IPAddress("fd7a:115c:a1e1::1"))))
    #expect(!v6.contains(try #require(IPAddress("100.101.1.5"))))
    #expect(try IPNetwork.parse("10.1.2.3").prefixLength == 32)
    #expect(try IPNetwork.parse("0.0.0.0/0").contains(try #require(IPAddress("8.8.8.8"))))
}

@Test func badPrefixesAreRefusedWithAReason() {
    #expect(throws: IPNetwork.Failure.badPrefixLength(max: 32)) { try IPNetwork.parse("10.0.0.0/33") }
    #expect(throws: IPNetwork.Failure.hostBitsSet(suggestion: "10.0.0.0/8")) { try IPNetwork.parse("10.1.0.0/8") }
    #expect(throws: IPNetwork.Failure.badAddress) { try IPNetwork.parse("10.0.0/8") }
}

@Test func endpointsParseInEveryForm() throws {
    #expect(try Endpoint.parse("127.0.0.1:443").description == "127.0.0.1:443")
    #expect(try Endpoint.parse("[::1]:8443").description == "[::1]:8443")
    #expect(try Endpoint.parse("minio.lan:9000") == .hostname("minio.lan", port: 9000))
    #expect(throws: Endpoint.Failure.badPort) { try Endpoint.parse("127.0.0.1:0") }
    #expect(throws: Endpoint.Failure.badPort) { try Endpoint.parse("127.0.0.1:+80") }
    #expect(throws: Endpoint.Failure.unbracketedIPv6) { try Endpoint.parse("::1:443") }
    #expect(throws: Endpoint.Failure.badAddress) { try Endpoint.parse("300.1.1.1:443") }
    #expect(throws: Endpoint.Failure.badHostname) { try Endpoint.parse("bad_host!:443") }
}

@Test func endpointDescriptionsFormatEveryOctetAndPort() throws {
    for text in ["0.0.0.0:1", "255.255.255.255:65535", "100.64.10.7:443", "10.0.200.9:8080", "1.2.3.4:80"] {
        #expect(try Endpoint.parse(text).description == text)
    }
    #expect(try SocketAddress(ipAddress: "192.168.1.20", port: 5432).endpointDescription == "192.168.1.20:5432")
    #expect(try SocketAddress(ipAddress: "fd7a:115c:a1e0::1", port: 443).endpointDescription == "[fd7a:115c:a1e0::1]:443")
}

@Test func durationsAcceptUnitsAndRefuseBareNumbers() throws {
    #expect(try DurationParser.parse("250ms") == .milliseconds(250))
    #expect(try DurationParser.parse("1h30m") == .seconds(5400))
    #expect(try DurationParser.parse("2d") == .seconds(172_800))
    #expect(throws: DurationParser.Failure.missingUnit) { try DurationParser.parse("5") }
    #expect(throws: DurationParser.Failure.unknownUnit("w")) { try DurationParser.parse("1w") }
    #expect(throws: DurationParser.Failure.overflow) { try DurationParser.parse("99999999999999999999s") }
}
