import NIOCore

/// An address to bind or connect to, as written: `1.2.3.4:443`, `[2001:db8::1]:443`, or `host:443`.
public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// A literal IP address and port.
    case address(SocketAddress)
    /// A hostname resolved when the configuration is loaded.
    case hostname(String, port: Int)

    enum Failure: Error, Equatable {
        case missingPort
        case badPort
        case unbracketedIPv6
        case badAddress
        case badHostname
    }

    static func parse(_ text: String) throws(Failure) -> Endpoint {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .badAddress }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .missingPort }
            portText = rest.dropFirst()
            guard host.contains(":") else { throw .badAddress }
        } else {
            let colons = text.filter { $0 == ":" }.count
            guard colons > 0 else { throw .missingPort }
            guard colons == 1 else { throw .unbracketedIPv6 }
            let colon = text.firstIndex(of: ":")!  // counted above
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), portText.count <= 5,
              let port = Int(portText), port >= 1, port <= 65_535
        else { throw .badPort }
        if let address = try? SocketAddress(ipAddress: String(host), port: port) {
            return .address(address)
        }
        if text.hasPrefix("[") || host.allSatisfy({ $0.isASCIIDigit || $0 == "." }) { throw .badAddress }
        guard HostnamePattern.isValidHostname(String(host)) else { throw .badHostname }
        return .hostname(String(host).lowercased(), port: port)
    }

    public var description: String {
        switch self {
        case .address(let address): return address.endpointDescription
        case .hostname(let name, let port): return "\(name):\(port)"
        }
    }
}

extension SocketAddress {
    /// `1.2.3.4:443` or `[2001:db8::1]:443`, without NIO's `[IPv4]` decoration.
    public var endpointDescription: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendEndpointDescription(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `endpointDescription` to `bytes`. IPv4 is formatted here, digit by digit: glibc's inet_ntop
    /// formats it with sprintf, and this runs for every connection log line.
    public func appendEndpointDescription(to bytes: inout [UInt8]) {
        switch self {
        case .v4(let address):
            let octets = UInt32(bigEndian: address.address.sin_addr.s_addr)
            for shift in stride(from: 24, through: 0, by: -8) {
                Self.appendDecimal(Int((octets >> UInt32(shift)) & 0xFF), to: &bytes)
                bytes.append(shift == 0 ? UInt8(ascii: ":") : UInt8(ascii: "."))
            }
            Self.appendDecimal(Int(UInt16(bigEndian: address.address.sin_port)), to: &bytes)
        case .v6:
            bytes.append(UInt8(ascii: "["))
            bytes.append(contentsOf: (ipAddress ?? "?").utf8)
            bytes.append(contentsOf: "]:".utf8)
            Self.appendDecimal(port ?? 0, to: &bytes)
        case .unixDomainSocket:
            bytes.append(contentsOf: (pathname ?? "unix").utf8)
        }
    }

    /// Appends a non-negative number in decimal.
    public static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        guard value >= 10 else {
            bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: max(0, value)))
            return
        }
        appendDecimal(value / 10, to: &bytes)
        bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10))
    }
}
