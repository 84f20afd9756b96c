import NIOCore

/// An IPv4 or IPv6 address as a number, for prefix matching. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) are stored as IPv4.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case v4, v6 }

    public let family: Family
    /// The upper 64 bits (IPv6 only; zero for IPv4).
    let high: UInt64
    /// The lower 64 bits; an IPv4 address occupies the lowest 32.
    let low: UInt64

    init(v4 value: UInt32) {
        family = .v4
        high = 0
        low = UInt64(value)
    }

    init(v6 high: UInt64, _ low: UInt64) {
        if high == 0, low >> 32 == 0xFFFF {
            family = .v4
            self.high = 0
            self.low = low & 0xFFFF_FFFF
        } else {
            family = .v6
            self.high = high
            self.low = low
        }
    }

    /// The address of an IP socket address; nil for Unix domain sockets.
    public init?(_ socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let address):
            self.init(v4: UInt32(bigEndian: address.address.sin_addr.s_addr))
        case .v6(let address):
            var raw = address.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &raw) { bytes -> (UInt64, UInt64) in
                var high: UInt64 = 0
                var low: UInt64 = 0
                for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
                for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
                return (high, low)
            }
            self.init(v6: high, low)
        case .unixDomainSocket:
            return nil
        }
    }

    /// Parses a literal IPv4 or IPv6 address (no brackets, no port).
    public init?(_ text: String) {
        guard let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
        self.init(address)
    }

    /// Bits of the address in family width (32 or 128).
    var bitWidth: Int { family == .v4 ? 32 : 128 }

    public var description: String {
        switch family {
        case .v4:
            let value = UInt32(truncatingIfNeeded: low)
            return "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        case .v6:
            var bytes = ByteBuffer()
            bytes.writeInteger(high)
            bytes.writeInteger(low)
            return (try? SocketAddress(packedIPAddress: bytes, port: 0).ipAddress).flatMap { $0 } ?? "?"
        }
    }
}

/// An address prefix such as `100.64.0.0/10` or `fd7a:115c:a1e0::/48`.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Why a prefix was refused.
    enum Failure: Error, Equatable {
        case badAddress
        case badPrefixLength(max: Int)
        case hostBitsSet(suggestion: String)
    }

    /// Parses `address/len`; a bare address means a single host.
    static func parse(_ text: String) throws(Failure) -> IPNetwork {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { throw .badAddress }
        let width = parts[0].contains(":") ? 128 : 32
        var length = width
        if parts.count == 2 {
            guard let value = Int(parts[1]), parts[1].allSatisfy(\.isASCIIDigit), value >= 0, value <= width else {
                throw .badPrefixLength(max: width)
            }
            length = value
        }
        if width == 128, address.family == .v4 {
            // ::ffff:a.b.c.d/len written as IPv6: express it on the IPv4 scale.
            guard length >= 96 else { throw .badPrefixLength(max: 128) }
            length -= 96
        }
        let network = IPNetwork(address: address, prefixLength: length)
        let masked = network.masked
        guard masked == address else {
            throw .hostBitsSet(suggestion: "\(masked)/\(length)")
        }
        return network
    }

    init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Why a prefix written as text was refused, as a sentence.
    public struct ParseError: Error, Equatable {
        public let text: String
    }

    /// Parses `address/len` (a bare address is one host), or says why not.
    public static func parsing(_ text: String) -> Result<IPNetwork, ParseError> {
        do {
            return .success(try parse(text))
        } catch {
            switch error {
            case .badAddress: return .failure(ParseError(text: "\"\(text)\" is not a valid address or prefix (e.g. \"100.64.0.0/10\", \"fd7a:115c:a1e0::/48\")"))
            case .badPrefixLength(let max): return .failure(ParseError(text: "\"\(text)\" has an invalid prefix length (0–\(max))"))
            case .hostBitsSet(let suggestion): return .failure(ParseError(text: "\"\(text)\" has bits set beyond the prefix length; did you mean \"\(suggestion)\"?"))
            }
        }
    }

    /// The prefix of `prefixLength` bits starting at `bytes` (4 or 16, network order); nil for another length.
    public init?(bytes: [UInt8], prefixLength: Int) {
        switch bytes.count {
        case 4:
            self.init(address: IPAddress(v4: bytes.reduce(0) { $0 << 8 | UInt32($1) }), prefixLength: min(32, max(0, prefixLength)))
        case 16:
            let high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
            let address = IPAddress(v6: high, low)
            // An IPv4-mapped address reads as IPv4: its prefix shrinks by the 96 bits of the mapping.
            self.init(address: address, prefixLength: address.family == .v4 ? max(0, prefixLength - 96) : min(128, max(0, prefixLength)))
        default:
            return nil
        }
    }

    /// The address itself, or `address/len` when it is a shorter prefix.
    public var compactDescription: String {
        prefixLength == (address.family == .v4 ? 32 : 128) ? address.description : description
    }

    /// Whether this prefix and `other` share an address.
    public func overlaps(_ other: IPNetwork) -> Bool {
        guard address.family == other.address.family else { return false }
        return contains(other.address) || other.contains(address)
    }

    private var masked: IPAddress {
        switch address.family {
        case .v4:
            let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << (32 - prefixLength)
            return IPAddress(v4: UInt32(truncatingIfNeeded: address.low) & mask)
        case .v6:
            let highMask: UInt64 = prefixLength == 0 ? 0 : (prefixLength >= 64 ? ~0 : ~UInt64(0) << (64 - prefixLength))
            let lowMask: UInt64 = prefixLength <= 64 ? 0 : (prefixLength == 128 ? ~0 : ~UInt64(0) << (128 - prefixLength))
            return IPAddress(v6: address.high & highMask, address.low & lowMask)
        }
    }

    /// Whether `candidate` lies inside this prefix (families must agree).
    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.family == address.family else { return false }
        return IPNetwork(address: candidate, prefixLength: prefixLength).masked == address
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
