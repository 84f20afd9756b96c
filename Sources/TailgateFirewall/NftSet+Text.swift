import Glibc

extension NftSet {
    /// The elements as `nft list` prints them, including its line breaks: ports five to a line,
    /// IPv4 addresses two to a line, interface names and IPv6 addresses one to a line.
    var elementsText: String {
        let perLine: Int? = switch keyType {
        case .inetService: 5
        case .ipv4Address: 2
        case .interfaceName, .ipv6Address: nil
        }
        var text = ""
        var count = 0
        for (index, range) in ranges.enumerated() {
            if index > 0 {
                if let perLine, count < perLine {
                    text += ", "
                } else {
                    text += ",\n\t\t\t     "
                    count = 0
                }
            }
            text += rangeText(range)
            count += 1
        }
        return text
    }

    private func rangeText(_ range: KeyRange) -> String {
        switch keyType {
        case .interfaceName:
            return "\"" + String(decoding: range.low.prefix { $0 != 0 }, as: UTF8.self) + "\""
        case .inetService:
            let low = portNumber(range.low)
            let high = portNumber(range.high)
            return low == high ? "\(low)" : "\(low)-\(high)"
        case .ipv4Address, .ipv6Address:
            return addressRangeText(range)
        }
    }

    private func portNumber(_ key: [UInt8]) -> UInt16 {
        key.reduce(0) { $0 << 8 | UInt16($1) }
    }

    /// A single address, a prefix (`10.0.0.0/8`) when the range is one, else `low-high`.
    private func addressRangeText(_ range: KeyRange) -> String {
        let width = range.low.count * 8
        var common = 0
        while common < width, bit(range.low, common) == bit(range.high, common) { common += 1 }
        if common == width { return Self.addressText(range.low) }
        let isPrefix = (common..<width).allSatisfy { !bit(range.low, $0) && bit(range.high, $0) }
        if isPrefix { return "\(Self.addressText(range.low))/\(common)" }
        return "\(Self.addressText(range.low))-\(Self.addressText(range.high))"
    }

    private func bit(_ key: [UInt8], _ index: Int) -> Bool {
        key[index / 8] & (0x80 >> UInt8(index % 8)) != 0
    }

    /// An IPv4 or IPv6 address (network byte order) in the form `inet_ntop` gives.
    static func addressText(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let converted = bytes.withUnsafeBytes { source in
            inet_ntop(AF_INET6, source.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard converted else { return ByteKey.hex(bytes) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
