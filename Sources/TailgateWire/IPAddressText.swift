import NIOCore

/// Strict text forms of IP addresses for the PROXY protocol v1 line (section 2.1 of the
/// specification), parsed from and written as ASCII bytes without going through `String`.
enum IPAddressText {
    /// Parses exactly four decimal numbers 0 to 255 separated by single dots, without leading
    /// zeros (which could be read as octal); returns the 4 bytes in network order.
    static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        var value = 0
        var digits = 0
        for character in text {
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                // A leading zero is only allowed as the whole number.
                guard !(digits == 1 && value == 0) else {
                    return nil
                }
                value = value * 10 + Int(character - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else {
                    return nil
                }
            case UInt8(ascii: "."):
                guard digits > 0, bytes.count < 3 else {
                    return nil
                }
                bytes.append(UInt8(value))
                value = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, bytes.count == 3 else {
            return nil
        }
        bytes.append(UInt8(value))
        return bytes
    }

    /// Parses groups of 1 to 4 hexadecimal digits separated by colons, with at most one `::`
    /// standing for one or more zero groups, for exactly 128 bits; returns the 16 bytes.
    ///
    /// Like `inet_pton`, which receivers such as haproxy use, it also accepts a dotted IPv4
    /// address as the last 32 bits (`::ffff:192.0.2.1`).
    static func parseIPv6(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var groups: [UInt16] = []
        groups.reserveCapacity(8)
        var gap: Int? = nil
        var index = text.startIndex
        if text.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            gap = 0
            index += 2
        }
        while index < text.endIndex {
            let tokenEnd = text[index...].firstIndex(of: UInt8(ascii: ":")) ?? text.endIndex
            let token = text[index..<tokenEnd]
            if token.contains(UInt8(ascii: ".")) {
                // An IPv4 tail ends the address.
                guard tokenEnd == text.endIndex, groups.count <= 6, let tail = Self.parseIPv4(token) else {
                    return nil
                }
                groups.append(UInt16(tail[0]) << 8 | UInt16(tail[1]))
                groups.append(UInt16(tail[2]) << 8 | UInt16(tail[3]))
                index = tokenEnd
                break
            }
            guard let group = Self.parseHexGroup(token), groups.count < 8 else {
                return nil
            }
            groups.append(group)
            guard tokenEnd < text.endIndex else {
                index = tokenEnd
                break
            }
            let next = tokenEnd + 1
            if next < text.endIndex, text[next] == UInt8(ascii: ":") {
                guard gap == nil else {
                    return nil
                }
                gap = groups.count
                index = next + 1
            } else {
                // A single colon must be followed by another group.
                guard next < text.endIndex else {
                    return nil
                }
                index = next
            }
        }
        if let gap {
            guard groups.count <= 7 else {
                return nil
            }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        guard groups.count == 8 else {
            return nil
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for group in groups {
            bytes.append(UInt8(group >> 8))
            bytes.append(UInt8(truncatingIfNeeded: group))
        }
        return bytes
    }

    private static func parseHexGroup(_ token: ArraySlice<UInt8>) -> UInt16? {
        guard (1...4).contains(token.count) else {
            return nil
        }
        var value: UInt16 = 0
        for character in token {
            guard let digit = Self.hexValue(character) else {
                return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    private static func hexValue(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Parses a port: a decimal number 0 to 65535 without sign or leading zeros.
    static func parsePort(_ text: ArraySlice<UInt8>) -> Int? {
        guard (1...5).contains(text.count), text.first != UInt8(ascii: "0") || text.count == 1 else {
            return nil
        }
        var value = 0
        for character in text {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(character) else {
                return nil
            }
            value = value * 10 + Int(character - UInt8(ascii: "0"))
        }
        return value <= 65_535 ? value : nil
    }

    /// Writes 4 bytes as a dotted-decimal IPv4 address.
    static func writeIPv4(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        for (position, byte) in bytes.enumerated() {
            if position > 0 {
                buffer.writeInteger(UInt8(ascii: "."))
            }
            Self.writeDecimal(Int(byte), into: &buffer)
        }
    }

    /// Writes 16 bytes as an IPv6 address in the RFC 5952 form: lowercase hexadecimal groups
    /// without leading zeros, the first longest run of two or more zero groups as `::`.
    static func writeIPv6(_ bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var gapStart = -1
        var gapLength = 1
        var runStart = 0
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                continue
            }
            if index - runStart > gapLength {
                gapStart = runStart
                gapLength = index - runStart
            }
            runStart = index + 1
        }
        var index = 0
        while index < 8 {
            if index == gapStart {
                buffer.writeStaticString("::")
                index += gapLength
                continue
            }
            if index > 0, index != gapStart + gapLength {
                buffer.writeInteger(UInt8(ascii: ":"))
            }
            Self.writeHexGroup(groups[index], into: &buffer)
            index += 1
        }
    }

    private static func writeHexGroup(_ group: UInt16, into buffer: inout ByteBuffer) {
        var shift = 12
        while shift > 0, group >> shift == 0 {
            shift -= 4
        }
        while shift >= 0 {
            let digit = UInt8(group >> shift & 0xF)
            buffer.writeInteger(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
            shift -= 4
        }
    }

    /// Writes a non-negative number in decimal.
    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        var divisor = 1
        while value / divisor >= 10 {
            divisor *= 10
        }
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }
}
