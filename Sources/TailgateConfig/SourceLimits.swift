/// A listener's limits per client address (`max_connections_per_source`, `connection_rate_per_source`):
/// what keeps one scanner or one misbehaving client from taking a listener's whole `max_connections`.
/// The client is the socket's peer, or the source of a trusted PROXY header; IPv6 clients are counted per
/// prefix (`source_prefix_ipv6`, /64 by default) so that one host cannot dodge the limit by changing the
/// low bits of its address.
public struct SourceLimits: Sendable, Equatable {
    /// New connections allowed per `window` from one source.
    public struct Rate: Sendable, Equatable {
        public var count: Int
        public var window: Duration

        public init(count: Int, window: Duration) {
            self.count = count
            self.window = window
        }
    }

    /// Connections open at once from one source; nil: no limit.
    public var maxConnections: Int?
    /// New connections per window from one source; nil: no limit.
    public var rate: Rate?
    /// Bits of an IPv4 client address that name a source (32: each address).
    public var ipv4Prefix = 32
    /// Bits of an IPv6 client address that name a source (64: one host's usual allocation).
    public var ipv6Prefix = 64

    public init(maxConnections: Int? = nil, rate: Rate? = nil, ipv4Prefix: Int = 32, ipv6Prefix: Int = 64) {
        self.maxConnections = maxConnections
        self.rate = rate
        self.ipv4Prefix = ipv4Prefix
        self.ipv6Prefix = ipv6Prefix
    }

    /// Either limit is set.
    public var isEnabled: Bool { maxConnections != nil || rate != nil }

    /// Parses `"60/10s"`: a count, a slash, a duration (`DurationParser`); nil with the reason otherwise.
    public static func parseRate(_ text: String) -> Result<Rate, RateError> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(String(parts[0]).trimmingASCIIWhitespace()), count >= 1 else { return .failure(.shape) }
        guard count <= 1_000_000 else { return .failure(.countTooLarge) }
        let windowText = String(parts[1]).trimmingASCIIWhitespace()
        // "60/s" reads as 60 per second.
        guard let window = try? DurationParser.parse(windowText.first?.isNumber == false ? "1" + windowText : windowText) else {
            return .failure(.window)
        }
        guard window >= .seconds(1), window <= .seconds(3_600) else { return .failure(.windowRange) }
        return .success(Rate(count: count, window: window))
    }

    public enum RateError: Error, Equatable {
        case shape, countTooLarge, window, windowRange

        public var message: String {
            switch self {
            case .shape: return "expected \"COUNT/DURATION\" with a count of at least 1, such as \"60/10s\" or \"5/s\""
            case .countTooLarge: return "the count is out of range 1…1000000"
            case .window: return "the window after '/' is not a duration such as \"10s\" or \"1m\""
            case .windowRange: return "the window must be between 1s and 1h"
            }
        }
    }
}


/// The source a client address is counted as: the address itself for IPv4 (or its `ipv4Prefix`), its
/// `ipv6Prefix` for IPv6, as 128 bits (IPv4 in its IPv4-mapped form, so the two families never meet).
public struct SourceKey: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64
    /// The prefix length, in the address family's width (for the description).
    public let prefixLength: UInt8
    public let isIPv4: Bool

    public init(_ address: IPAddress, ipv4Prefix: Int, ipv6Prefix: Int) {
        switch address.family {
        case .v4:
            let shift = UInt64(32 - min(32, max(0, ipv4Prefix)))
            let masked = shift >= 32 ? 0 : (address.low >> shift) << shift
            high = 0
            low = 0xFFFF_0000_0000 | (masked & 0xFFFF_FFFF)
            prefixLength = UInt8(min(32, max(0, ipv4Prefix)))
            isIPv4 = true
        case .v6:
            let bits = min(128, max(0, ipv6Prefix))
            high = bits >= 64 ? address.high : bits == 0 ? 0 : address.high & ~(UInt64.max >> UInt64(bits))
            low = bits >= 128 ? address.low : bits <= 64 ? 0 : address.low & ~(UInt64.max >> UInt64(bits - 64))
            prefixLength = UInt8(bits)
            isIPv4 = false
        }
    }

    /// `203.0.113.7`, or `2001:db8:1:2::/64` (a prefix shorter than the address is written with it).
    public var description: String {
        let address = isIPv4 ? IPAddress(v4: UInt32(truncatingIfNeeded: low)) : IPAddress(v6: high, low)
        let full = isIPv4 ? 32 : 128
        return Int(prefixLength) == full ? address.description : "\(address)/\(prefixLength)"
    }
}
