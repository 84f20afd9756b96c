/// Where to cut an input into the 2 or 3 chunks a peer might send it in.
///
/// The cut points are derived from the input's bytes (an FNV-1a hash), so that every mutation
/// libFuzzer makes also moves them, and a crash reproduces from the saved input alone.
public struct ChunkPlan: Sendable {
    /// The chunks, in order; together they cover the input exactly.
    public let chunks: [Range<Int>]

    /// Plans the chunks of `bytes`: one when it is shorter than 2 bytes, else 2 or 3 non-empty ones.
    public init(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        guard count >= 2 else {
            self.chunks = [0..<count]
            return
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        // Cuts in 1..<count, so that no chunk is empty.
        let first = 1 + Int(hash % UInt64(count - 1))
        let second = 1 + Int((hash >> 32) % UInt64(count - 1))
        let cuts = Set([first, second]).sorted()
        var chunks: [Range<Int>] = []
        var start = 0
        for cut in cuts {
            chunks.append(start..<cut)
            start = cut
        }
        chunks.append(start..<count)
        self.chunks = chunks
    }
}
