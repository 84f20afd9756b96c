/// A cursor over the document's UTF-8 bytes that tracks the line and column
/// (in Unicode scalars) of the current byte. Every step is O(1).
struct Scanner {
    let bytes: [UInt8]
    private(set) var offset = 0
    private(set) var line = 1
    private(set) var column = 1

    init(bytes: [UInt8]) {
        self.bytes = bytes
        // A UTF-8 byte order mark is allowed at the very start and is not content.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { offset = 3 }
    }

    var position: SourcePosition { SourcePosition(line: line, column: column) }
    var isAtEnd: Bool { offset >= bytes.count }

    /// The byte `ahead` bytes past the cursor, or nil past the end.
    func peek(_ ahead: Int = 0) -> UInt8? {
        let index = offset + ahead
        return index < bytes.count ? bytes[index] : nil
    }

    func peek(is byte: UInt8, _ ahead: Int = 0) -> Bool { peek(ahead) == byte }

    /// Moves past one byte, keeping line and column up to date.
    mutating func advance() {
        guard offset < bytes.count else { return }
        let byte = bytes[offset]
        offset += 1
        if byte == ASCII.lineFeed {
            line += 1
            column = 1
        } else if byte & 0xC0 != 0x80 {
            // Count lead bytes only, so a multi-byte scalar advances one column.
            column += 1
        }
    }

    mutating func advance(by count: Int) {
        for _ in 0..<count { advance() }
    }

    /// Consumes `byte` if it is next.
    mutating func consume(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        advance()
        return true
    }

    /// Skips spaces and tabs.
    mutating func skipWhitespace() {
        while let byte = peek(), byte == ASCII.space || byte == ASCII.tab { advance() }
    }

    /// True if the cursor is at LF or CRLF.
    var isAtNewline: Bool {
        peek() == ASCII.lineFeed || (peek() == ASCII.carriageReturn && peek(1) == ASCII.lineFeed)
    }

    /// Consumes LF or CRLF if it is next.
    mutating func consumeNewline() -> Bool {
        if peek() == ASCII.lineFeed {
            advance()
            return true
        }
        if peek() == ASCII.carriageReturn && peek(1) == ASCII.lineFeed {
            advance(by: 2)
            return true
        }
        return false
    }

    /// The Unicode scalar starting at the cursor, for messages. The input is
    /// valid UTF-8 by the time it is scanned.
    func currentScalar() -> Unicode.Scalar? {
        guard let lead = peek() else { return nil }
        let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        guard offset + length <= bytes.count else { return nil }
        var iterator = bytes[offset..<(offset + length)].makeIterator()
        var decoder = UTF8()
        if case .scalarValue(let scalar) = decoder.decode(&iterator) { return scalar }
        return nil
    }

    /// The next character as an operator would read it in a message:
    /// `'x'`, `end of line`, `end of file`, or `U+0000` for control characters.
    func describeCurrent() -> String {
        if isAtEnd { return "end of file" }
        if isAtNewline { return "end of line" }
        guard let scalar = currentScalar() else { return "invalid byte" }
        return describe(scalar)
    }

    func describe(_ scalar: Unicode.Scalar) -> String {
        if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\u{FEFF}" {
            return "control character " + unicodeName(scalar)
        }
        if scalar.properties.isWhitespace { return "whitespace " + unicodeName(scalar) }
        return "'\(Character(scalar))'"
    }

    private func unicodeName(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// Builds an error at the cursor.
    func error(_ message: String) -> TOMLParseError {
        TOMLParseError(message: message, position: position)
    }
}

/// ASCII bytes used by the scanner and parser.
enum ASCII {
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22  // "
    static let hash: UInt8 = 0x23  // #
    static let apostrophe: UInt8 = 0x27  // '
    static let plus: UInt8 = 0x2B
    static let comma: UInt8 = 0x2C
    static let minus: UInt8 = 0x2D
    static let dot: UInt8 = 0x2E
    static let colon: UInt8 = 0x3A
    static let equals: UInt8 = 0x3D
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    static let underscore: UInt8 = 0x5F
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
    static let delete: UInt8 = 0x7F

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A }

    /// A bare key character: A-Z a-z 0-9 - _
    static func isBareKey(_ byte: UInt8) -> Bool {
        isLetter(byte) || isDigit(byte) || byte == minus || byte == underscore
    }

    /// A control character that TOML forbids in comments and strings (all but tab).
    static func isForbiddenControl(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != tab) || byte == delete
    }
}
