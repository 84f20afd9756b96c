/// The CRC32c (Castagnoli) checksum of RFC 4960 Appendix B, as the PROXY protocol's
/// `PP2_TYPE_CRC32C` TLV carries it.
struct CRC32C {
    /// The byte-wise lookup table of the reflected polynomial 0x82F63B78.
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? value >> 1 ^ 0x82F6_3B78 : value >> 1
        }
        return value
    }

    private var state: UInt32 = 0xFFFF_FFFF

    /// The checksum of the bytes so far.
    var value: UInt32 {
        ~self.state
    }

    /// Adds `bytes` to the checksum.
    mutating func update(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            self.state = Self.table[Int(UInt8(truncatingIfNeeded: self.state) ^ byte)] ^ self.state >> 8
        }
    }
}
