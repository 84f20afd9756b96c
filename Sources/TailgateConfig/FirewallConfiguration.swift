/// The `[firewall]` table: which ports only the tailnet and trusted interfaces may reach.
public struct FirewallConfiguration: Sendable, Equatable {
    /// What happens to a packet that is not allowed.
    public enum Action: String, Sendable, CaseIterable {
        case drop, reject
    }

    /// A port or an inclusive range of ports.
    public struct PortRange: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var lower: UInt16
        public var upper: UInt16

        public init(_ lower: UInt16, _ upper: UInt16? = nil) {
            self.lower = lower
            self.upper = upper ?? lower
        }

        public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }

        public static func < (lhs: PortRange, rhs: PortRange) -> Bool {
            (lhs.lower, lhs.upper) < (rhs.lower, rhs.upper)
        }
    }

    /// False leaves the kernel alone (`run` then needs no CAP_NET_ADMIN).
    public var enabled: Bool
    /// Tailnet source prefixes (IPv4 and IPv6), trusted only when they arrive on `tailnetInterfaces`.
    public var allow: [IPNetwork]
    public var tailnetInterfaces: [String]
    /// Interfaces whose traffic is never restricted.
    public var trustedInterfaces: [String]
    public var tcpPorts: [PortRange]
    public var udpPorts: [PortRange]
    public var action: Action
    /// How often the kernel's table is compared with the desired one.
    public var checkInterval: Duration

    public init(
        enabled: Bool = true, allow: [IPNetwork] = FirewallConfiguration.tailnetPrefixes,
        tailnetInterfaces: [String] = ["tailscale0"], trustedInterfaces: [String] = ["lo"],
        tcpPorts: [PortRange] = [], udpPorts: [PortRange] = [], action: Action = .drop, checkInterval: Duration = .seconds(30)
    ) {
        self.enabled = enabled
        self.allow = allow
        self.tailnetInterfaces = tailnetInterfaces
        self.trustedInterfaces = trustedInterfaces
        self.tcpPorts = tcpPorts
        self.udpPorts = udpPorts
        self.action = action
        self.checkInterval = checkInterval
    }

    /// Tailscale's address ranges.
    public static let tailnetPrefixes: [IPNetwork] = [
        IPNetwork(address: IPAddress(v4: 0x6440_0000), prefixLength: 10),
        IPNetwork(address: IPAddress(v6: 0xfd7a_115c_a1e0_0000, 0), prefixLength: 48),
    ]
}

extension IPAddress {
    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch family {
        case .v4:
            let value = UInt32(truncatingIfNeeded: low)
            return [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        case .v6:
            return (0..<8).map { UInt8(high >> (56 - 8 * $0) & 0xFF) } + (0..<8).map { UInt8(low >> (56 - 8 * $0) & 0xFF) }
        }
    }
}
