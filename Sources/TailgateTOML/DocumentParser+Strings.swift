/// Basic (`"..."`, `"""..."""`) and literal (`'...'`, `'''...'''`) strings.
///
/// Line endings inside multi-line strings are normalized to LF.
extension DocumentParser {
    /// Parses a basic string starting at its opening quote.
    mutating func parseBasicString(allowMultiline: Bool) throws(TOMLParseError) -> String {
        if isAtTripleQuote(ASCII.quote) {
            guard allowMultiline else { throw scanner.error("a multi-line string cannot be used as a key") }
            return try parseMultilineString(quote: ASCII.quote)
        }
        let start = scanner.position
        scanner.advance()
        var content: [UInt8] = []
        while true {
            guard let byte = scanner.peek(), !scanner.isAtNewline else {
                throw unterminated(at: start, quote: "\"", hint: " (use \"\"\" for a multi-line string)")
            }
            switch byte {
            case ASCII.quote:
                scanner.advance()
                return String(decoding: content, as: UTF8.self)
            case ASCII.backslash:
                try parseEscape(into: &content)
            default:
                try appendContentByte(byte, to: &content)
            }
        }
    }

    /// Parses a literal string starting at its opening apostrophe.
    mutating func parseLiteralString(allowMultiline: Bool) throws(TOMLParseError) -> String {
        if isAtTripleQuote(ASCII.apostrophe) {
            guard allowMultiline else { throw scanner.error("a multi-line string cannot be used as a key") }
            return try parseMultilineString(quote: ASCII.apostrophe)
        }
        let start = scanner.position
        scanner.advance()
        let begin = scanner.offset
        while true {
            guard let byte = scanner.peek(), !scanner.isAtNewline else {
                throw unterminated(at: start, quote: "'", hint: " (use ''' for a multi-line string)")
            }
            if byte == ASCII.apostrophe {
                let text = String(decoding: scanner.bytes[begin..<scanner.offset], as: UTF8.self)
                scanner.advance()
                return text
            }
            try checkNotControl(byte)
            scanner.advance()
        }
    }

    /// Parses `"""..."""` (with escapes) or `'''...'''` (without).
    private mutating func parseMultilineString(quote: UInt8) throws(TOMLParseError) -> String {
        let start = scanner.position
        let delimiter = quote == ASCII.quote ? "\"\"\"" : "'''"
        scanner.advance(by: 3)
        // A newline right after the opening delimiter is not part of the string.
        _ = scanner.consumeNewline()
        var content: [UInt8] = []
        while true {
            guard let byte = scanner.peek() else {
                throw unterminated(at: start, quote: delimiter, hint: "")
            }
            if byte == quote {
                var run = 0
                while scanner.peek(is: quote, run) { run += 1 }
                if run >= 3 {
                    // Up to two quotes may directly precede the closing delimiter.
                    guard run <= 5 else {
                        scanner.advance(by: 5)
                        throw scanner.error("unexpected \(scanner.describeCurrent()) after the closing \(delimiter)")
                    }
                    content.append(contentsOf: repeatElement(quote, count: run - 3))
                    scanner.advance(by: run)
                    return String(decoding: content, as: UTF8.self)
                }
                content.append(contentsOf: repeatElement(quote, count: run))
                scanner.advance(by: run)
            } else if scanner.consumeNewline() {
                content.append(ASCII.lineFeed)
            } else if byte == ASCII.backslash && quote == ASCII.quote {
                if !skipLineEndingBackslash() { try parseEscape(into: &content) }
            } else {
                try appendContentByte(byte, to: &content)
            }
        }
    }

    /// A `\` that is the last non-blank character on its line removes itself,
    /// the line break and all whitespace and line breaks after it.
    private mutating func skipLineEndingBackslash() -> Bool {
        var ahead = 1
        while scanner.peek(is: ASCII.space, ahead) || scanner.peek(is: ASCII.tab, ahead) { ahead += 1 }
        let isNewline = scanner.peek(is: ASCII.lineFeed, ahead)
            || (scanner.peek(is: ASCII.carriageReturn, ahead) && scanner.peek(is: ASCII.lineFeed, ahead + 1))
        guard isNewline else { return false }
        scanner.advance(by: ahead)
        while true {
            scanner.skipWhitespace()
            if !scanner.consumeNewline() { return true }
        }
    }

    /// Parses one escape sequence starting at its backslash.
    private mutating func parseEscape(into content: inout [UInt8]) throws(TOMLParseError) {
        let start = scanner.position
        scanner.advance()
        guard let byte = scanner.peek(), !scanner.isAtNewline else {
            throw TOMLParseError(message: "invalid escape sequence: '\\' followed by \(scanner.describeCurrent())", position: start)
        }
        let simple: UInt8?
        switch byte {
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "t"): simple = ASCII.tab
        case UInt8(ascii: "n"): simple = ASCII.lineFeed
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "r"): simple = ASCII.carriageReturn
        case ASCII.quote: simple = ASCII.quote
        case ASCII.backslash: simple = ASCII.backslash
        case UInt8(ascii: "u"), UInt8(ascii: "U"): simple = nil
        default:
            let shown = scanner.currentScalar().map { "\\" + String(Character($0)) } ?? "\\"
            throw TOMLParseError(message: "invalid escape sequence '\(shown)'", position: start)
        }
        scanner.advance()
        if let simple {
            content.append(simple)
            return
        }
        let digits = byte == UInt8(ascii: "u") ? 4 : 8
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard let next = scanner.peek(), let digit = hexValue(next) else {
                throw TOMLParseError(
                    message: "invalid escape sequence: '\\\(Character(Unicode.Scalar(byte)))' needs exactly \(digits) hexadecimal digits",
                    position: start
                )
            }
            value = value << 4 | UInt32(digit)
            scanner.advance()
        }
        guard let scalar = Unicode.Scalar(value) else {
            let hex = String(value, radix: 16, uppercase: true)
            throw TOMLParseError(message: "escape sequence U+\(hex) is not a Unicode scalar value", position: start)
        }
        UTF8.encode(scalar) { content.append($0) }
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    private func isAtTripleQuote(_ quote: UInt8) -> Bool {
        scanner.peek(is: quote) && scanner.peek(is: quote, 1) && scanner.peek(is: quote, 2)
    }

    private mutating func appendContentByte(_ byte: UInt8, to content: inout [UInt8]) throws(TOMLParseError) {
        try checkNotControl(byte)
        content.append(byte)
        scanner.advance()
    }

    private func checkNotControl(_ byte: UInt8) throws(TOMLParseError) {
        if ASCII.isForbiddenControl(byte) {
            throw scanner.error("\(scanner.describeCurrent()) is not allowed in a string")
        }
    }

    private func unterminated(at start: SourcePosition, quote: String, hint: String) -> TOMLParseError {
        TOMLParseError(message: "unterminated string: missing closing \(quote)\(hint)", position: start)
    }
}
