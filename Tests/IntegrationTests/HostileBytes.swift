import Foundation

/// Hand-made bytes for the hostile clients.
enum HostileBytes {
    /// A PROXY protocol v2 header (PROXY, TCP over IPv4) from `source` to 127.0.0.1:443 with `tlvs` after
    /// the addresses; `announcedLength` replaces the true length in the fixed part.
    static func proxyV2(source: String, sourcePort: UInt16 = 4444, tlvs: [UInt8] = [], announcedLength: Int? = nil) -> [UInt8] {
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let addresses = ipv4(source) + ipv4("127.0.0.1") + bigEndian(sourcePort) + bigEndian(443)
        let length = announcedLength ?? addresses.count + tlvs.count
        return signature + [0x21, 0x11] + bigEndian(UInt16(length)) + addresses + tlvs
    }

    /// `hello` (one record holding a ClientHello) with a padding extension (RFC 7685) appended so that the
    /// record, header included, is `total` bytes long.
    static func padded(_ hello: [UInt8], to total: Int) -> [UInt8] {
        var bytes = hello
        // Record header (5), handshake header (4), version (2), random (32), then the variable parts.
        var index = 5 + 4 + 2 + 32
        index += 1 + Int(bytes[index])
        index += 2 + (Int(bytes[index]) << 8 | Int(bytes[index + 1]))
        index += 1 + Int(bytes[index])
        let extensionsLengthAt = index
        let grow = total - hello.count
        let padding = grow - 4
        bytes += bigEndian(0x0015) + bigEndian(UInt16(padding)) + [UInt8](repeating: 0, count: padding)
        func add(_ amount: Int, at offset: Int, width: Int) {
            var value = 0
            for byte in bytes[offset..<offset + width] { value = value << 8 | Int(byte) }
            value += amount
            for position in 0..<width { bytes[offset + position] = UInt8(truncatingIfNeeded: value >> (8 * (width - 1 - position))) }
        }
        add(grow, at: 3, width: 2)
        add(grow, at: 6, width: 3)
        add(grow, at: extensionsLengthAt, width: 2)
        return bytes
    }

    /// The integer value of `name=` in a connection-log line.
    static func field(_ name: String, in line: String) -> Int? {
        line.split(separator: " ").first { $0.hasPrefix("\(name)=") }.flatMap { Int($0.dropFirst(name.count + 1)) }
    }

    private static func ipv4(_ text: String) -> [UInt8] {
        text.split(separator: ".").map { UInt8($0) ?? 0 }
    }

    private static func bigEndian(_ value: UInt16) -> [UInt8] {
        [UInt8(value >> 8), UInt8(value & 0xFF)]
    }
}
