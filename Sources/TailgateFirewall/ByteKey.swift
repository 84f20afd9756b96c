/// Helpers for set keys kept as big-endian byte arrays.
enum ByteKey {
    /// Whether `lhs` is numerically smaller than `rhs` (same length, big endian).
    static func precedes(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        lhs.lexicographicallyPrecedes(rhs)
    }

    /// The key plus one, or nil when it is the largest key of its length.
    static func successor(of key: [UInt8]) -> [UInt8]? {
        var result = key
        for index in result.indices.reversed() {
            if result[index] == 0xFF {
                result[index] = 0
            } else {
                result[index] += 1
                return result
            }
        }
        return nil
    }

    /// A port in network byte order.
    static func port(_ value: UInt16) -> [UInt8] {
        [UInt8(value >> 8), UInt8(value & 0xFF)]
    }

    /// Lower-case hex digits of the key.
    static func hex(_ key: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(key.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] })
    }
}
