import NIOCore
import Testing

@testable import TailgateWire

@Suite struct SocketAddressIPv4MappingTests {
    @Test func ipv4MappedAddressBecomesIPv4WithItsPort() throws {
        let mapped = try address("::ffff:192.0.2.1", 8443)
        #expect(mapped.unmappingIPv4() == (try address("192.0.2.1", 8443)))
    }

    @Test(arguments: [
        "192.0.2.1", "2001:db8::1", "::1", "::", "::192.0.2.1", "::fffe:192.0.2.1", "64:ff9b::192.0.2.1",
        "1::ffff:192.0.2.1",
    ])
    func otherAddressesStayAsTheyAre(text: String) throws {
        let original = try address(text, 443)
        #expect(original.unmappingIPv4() == original)
    }

    @Test func unixSocketAddressStaysAsItIs() throws {
        let unix = try SocketAddress(unixDomainSocketPath: "/tmp/tailgate.sock")
        #expect(unix.unmappingIPv4() == unix)
    }
}
