/// The drop counter of one protected port entry, for metrics labels.
public struct PortCounter: Sendable, Hashable {
    /// The nftables counter name: `dropped_tcp_5432`, `dropped_tcp_3000_3010`, `dropped_udp_53`.
    public let name: String
    /// `tcp` or `udp`.
    public let proto: String
    /// The port or range as configured: `5432`, `3000-3010`.
    public let ports: String

    /// A counter description.
    public init(name: String, proto: String, ports: String) {
        self.name = name
        self.proto = proto
        self.ports = ports
    }
}
