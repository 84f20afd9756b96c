@testable import TailgateConfig

/// Configurations the tests share.
enum Configurations {
    /// The design's example (firewall/tailgate.nft): tcp 5432 and 6379, udp 9000, Tailscale's prefixes.
    static let example = FirewallConfiguration(tcpPorts: [.init(5432), .init(6379)], udpPorts: [.init(9000)])

    /// Ranges, rejection, several interfaces and prefixes, elements enough to wrap lines in `nft list`.
    static let wide = FirewallConfiguration(
        allow: networks("100.64.0.0/10", "10.0.0.0/25", "10.0.0.128/25", "192.0.2.7", "0.0.0.0/1", "fd7a:115c:a1e0::/48", "2001:db8::1"),
        tailnetInterfaces: ["tailscale0", "wg0"], trustedInterfaces: ["lo", "docker0", "br-1234", "eth1"],
        tcpPorts: [.init(22), .init(80), .init(443), .init(3000, 3010), .init(5432), .init(5433), .init(6379), .init(8080), .init(65_535)],
        udpPorts: [.init(53), .init(9000, 9100)], action: .reject
    )

    /// Nothing for udp and no IPv6 prefix: empty sets.
    static let sparse = FirewallConfiguration(allow: networks("100.64.0.0/10"), tcpPorts: [.init(5432)])

    static func networks(_ texts: String...) -> [IPNetwork] {
        texts.compactMap { try? IPNetwork.parse($0) }
    }
}
