/// Reads the bytes of the first handshake message of a TLS stream, which may be fragmented
/// over several handshake records (RFC 8446 §5.1), in place: it keeps indices into the
/// received bytes and copies nothing but what a caller asks for.
///
/// Every read returns nil when the bytes it needs have not arrived yet, and throws as soon
/// as a record header that has arrived cannot belong to a ClientHello of at most `maxBytes`.
///
/// It reads from a raw view of the received bytes, valid only inside the caller's
/// `withUnsafeReadableBytes` (a reader must not outlive that call). Every index is checked
/// against `bytes.count` before it is read: an unsafe buffer's own checks are gone in release
/// builds. Through `ByteBuffer.getInteger` each byte cost a bounds check and an exclusivity
/// check of the buffer's storage: half of a ClientHello's parse.
struct HandshakeReader {
    /// The largest fragment of a plaintext record (RFC 8446 §5.1).
    static let maximumFragmentLength = 1 << 14

    /// The length of a record header: type, version, length.
    static let recordHeaderLength = 5

    private let bytes: UnsafeRawBufferPointer
    private let maxBytes: Int

    /// The index in `bytes` of the next handshake byte to read.
    private var index: Int

    /// The index in `bytes` just past the fragment of the current record.
    private var fragmentEnd: Int

    /// The number of bytes of the records entered so far, headers included.
    private(set) var recordBytes: Int

    /// The number of handshake bytes read or skipped so far.
    private(set) var position: Int

    /// The handshake position where the message ends, once known.
    private var messageEnd: Int?

    init(bytes: UnsafeRawBufferPointer, maxBytes: Int) {
        self.bytes = bytes
        self.maxBytes = maxBytes
        self.index = 0
        self.fragmentEnd = 0
        self.recordBytes = 0
        self.position = 0
        self.messageEnd = nil
    }

    /// Whether everything read so far ends exactly where the current record ends.
    var isAtRecordBoundary: Bool {
        self.index == self.fragmentEnd
    }

    /// Declares that the handshake message ends at handshake position `end`.
    ///
    /// The message may precede a key change (0-RTT early data after a ClientHello), so it must
    /// end where a record ends (RFC 8446 §5.1): from now on a record reaching past `end` throws.
    mutating func endMessage(at end: Int) throws(ClientHelloError) {
        guard self.position + (self.fragmentEnd - self.index) <= end else {
            throw .malformed
        }
        self.messageEnd = end
    }

    /// Reads one handshake byte.
    mutating func readByte() throws(ClientHelloError) -> UInt8? {
        guard try self.enterRecordIfNeeded(), self.index < self.bytes.count else {
            return nil
        }
        let byte = self.bytes[self.index]
        self.index += 1
        self.position += 1
        return byte
    }

    /// Reads a big-endian unsigned integer of `byteCount` (at most 3) handshake bytes.
    mutating func readLength(byteCount: Int) throws(ClientHelloError) -> Int? {
        // Within the current fragment and arrived (nearly always): no record to enter, one check.
        if self.fragmentEnd - self.index >= byteCount, self.bytes.count - self.index >= byteCount {
            var value = 0
            for offset in 0..<byteCount {
                value = value << 8 | Int(self.bytes[self.index + offset])
            }
            self.index += byteCount
            self.position += byteCount
            return value
        }
        var value = 0
        for _ in 0..<byteCount {
            guard let byte = try self.readByte() else {
                return nil
            }
            value = value << 8 | Int(byte)
        }
        return value
    }

    /// Moves past `count` handshake bytes; returns false if they have not all arrived.
    mutating func skip(_ count: Int) throws(ClientHelloError) -> Bool {
        var left = count
        while left > 0 {
            guard try self.enterRecordIfNeeded() else {
                return false
            }
            let step = min(left, self.fragmentEnd - self.index)
            // The bytes must have arrived, not merely be announced by the record header.
            guard self.bytes.count - self.index >= step else {
                return false
            }
            self.index += step
            self.position += step
            left -= step
        }
        return true
    }

    /// Appends `count` handshake bytes to `bytes`; returns false if they have not all arrived.
    mutating func readBytes(_ count: Int, appendingTo bytes: inout [UInt8]) throws(ClientHelloError) -> Bool {
        var left = count
        while left > 0 {
            guard try self.enterRecordIfNeeded() else {
                return false
            }
            let step = min(left, self.fragmentEnd - self.index)
            guard self.bytes.count - self.index >= step else {
                return false
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: self.bytes[self.index..<self.index + step]))
            self.index += step
            self.position += step
            left -= step
        }
        return true
    }

    /// Enters the next record when the current fragment is used up.
    ///
    /// Validates whatever part of the next record header has arrived, so that a wrong byte is
    /// reported as soon as it is seen; returns false while the header is incomplete.
    private mutating func enterRecordIfNeeded() throws(ClientHelloError) -> Bool {
        guard self.index == self.fragmentEnd else {
            return true
        }
        let header = self.fragmentEnd
        let isFirst = self.recordBytes == 0

        let available = self.bytes.count - header
        guard available >= 1 else {
            return false
        }
        let contentType = self.bytes[header]
        guard contentType == 22 else {
            throw isFirst ? .notTLS : .unexpectedRecord
        }
        guard available >= 2 else {
            return false
        }
        let major = self.bytes[header + 1]
        guard major == 3 else {
            throw isFirst ? .notTLS : .malformed
        }
        guard available >= 3 else {
            return false
        }
        let minor = self.bytes[header + 2]
        guard minor & 0xF0 == 0 else {
            throw isFirst ? .notTLS : .malformed
        }
        guard available >= Self.recordHeaderLength else {
            return false
        }
        let fragmentLength = Int(self.bytes[header + 3]) << 8 | Int(self.bytes[header + 4])
        guard fragmentLength <= Self.maximumFragmentLength else {
            throw .recordTooLarge
        }
        // RFC 8446 §5.1: zero-length fragments of handshake records are not allowed.
        guard fragmentLength > 0 else {
            throw .malformed
        }
        guard self.recordBytes + Self.recordHeaderLength + fragmentLength <= self.maxBytes else {
            throw .tooLarge
        }
        if let messageEnd = self.messageEnd, self.position + fragmentLength > messageEnd {
            throw .malformed
        }
        self.recordBytes += Self.recordHeaderLength + fragmentLength
        self.index = header + Self.recordHeaderLength
        self.fragmentEnd = self.index + fragmentLength
        return true
    }
}
