/// Values: dispatch on the first character, arrays, inline tables and bare words.
extension DocumentParser {
    /// Parses the value starting at the cursor. `depth` counts the arrays and
    /// inline tables it is nested in.
    mutating func parseValue(depth: Int) throws(TOMLParseError) -> TOMLValue {
        let start = scanner.position
        guard let byte = scanner.peek(), !scanner.isAtNewline else {
            throw scanner.error("expected a value, found \(scanner.describeCurrent())")
        }
        let kind: TOMLValueKind
        switch byte {
        case ASCII.quote:
            kind = .string(try parseBasicString(allowMultiline: true))
        case ASCII.apostrophe:
            kind = .string(try parseLiteralString(allowMultiline: true))
        case ASCII.openBracket:
            kind = .array(try parseArray(depth: depth + 1))
        case ASCII.openBrace:
            kind = .table(try parseInlineTable(depth: depth + 1))
        case _ where ASCII.isDigit(byte) && looksLikeDate:
            kind = .dateTime(try parseDateTime())
        case _ where ASCII.isDigit(byte) && looksLikeTime:
            kind = .dateTime(TOMLDateTime(date: nil, time: try parseTime()))
            if let next = scanner.peek(), [UInt8(ascii: "Z"), UInt8(ascii: "z"), ASCII.plus, ASCII.minus].contains(next) {
                throw scanner.error("a local time cannot have a UTC offset; write a full date-time instead")
            }
        case _ where ASCII.isDigit(byte) || byte == ASCII.plus || byte == ASCII.minus || byte == ASCII.dot:
            kind = try parseNumber()
        case _ where ASCII.isLetter(byte):
            kind = try parseWord()
        default:
            throw scanner.error("expected a value, found \(scanner.describeCurrent())")
        }
        return TOMLValue(kind: kind, position: start)
    }

    /// `true`, `false`, `inf` and `nan`; anything else is an unquoted string.
    private mutating func parseWord() throws(TOMLParseError) -> TOMLValueKind {
        let start = scanner.position
        let begin = scanner.offset
        while let byte = scanner.peek(), ASCII.isBareKey(byte) || byte == ASCII.dot { scanner.advance() }
        let word = String(decoding: scanner.bytes[begin..<scanner.offset], as: UTF8.self)
        switch word {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf": return .float(.infinity)
        case "nan": return .float(.nan)
        default:
            throw TOMLParseError(
                message: "invalid value '\(word)' (strings must be quoted; booleans are lowercase 'true' and 'false')",
                position: start
            )
        }
    }

    /// Parses `[ value, ... ]`; newlines and comments may appear between elements.
    private mutating func parseArray(depth: Int) throws(TOMLParseError) -> [TOMLValue] {
        if depth > Self.nestingLimit {
            throw scanner.error("arrays and inline tables are nested more than \(Self.nestingLimit) levels deep")
        }
        let start = scanner.position
        scanner.advance()
        var elements: [TOMLValue] = []
        while true {
            try skipArrayWhitespace()
            if scanner.consume(ASCII.closeBracket) { return elements }
            if scanner.isAtEnd {
                throw TOMLParseError(message: "unterminated array: missing ']' (array opened here)", position: start)
            }
            elements.append(try parseValue(depth: depth))
            try skipArrayWhitespace()
            if scanner.consume(ASCII.comma) { continue }
            if scanner.consume(ASCII.closeBracket) { return elements }
            if scanner.isAtEnd {
                throw TOMLParseError(message: "unterminated array: missing ']' (array opened here)", position: start)
            }
            throw scanner.error("expected ',' or ']' after array element, found \(scanner.describeCurrent())")
        }
    }

    private mutating func skipArrayWhitespace() throws(TOMLParseError) {
        while true {
            scanner.skipWhitespace()
            if scanner.peek(is: ASCII.hash) {
                try skipComment()
            } else if !scanner.consumeNewline() {
                return
            }
        }
    }

    /// Parses `{ key = value, ... }`, which must fit on one line (TOML 1.0).
    private mutating func parseInlineTable(depth: Int) throws(TOMLParseError) -> TOMLTable {
        if depth > Self.nestingLimit {
            throw scanner.error("arrays and inline tables are nested more than \(Self.nestingLimit) levels deep")
        }
        let table = TableNode(origin: .inline, position: scanner.position)
        scanner.advance()
        scanner.skipWhitespace()
        if scanner.consume(ASCII.closeBrace) { return table.frozen() }
        while true {
            if scanner.isAtNewline {
                throw scanner.error("inline tables must be written on one line; found end of line")
            }
            try parseKeyValue(into: table, depth: depth)
            scanner.skipWhitespace()
            if scanner.consume(ASCII.closeBrace) { return table.frozen() }
            guard scanner.consume(ASCII.comma) else {
                let found = scanner.describeCurrent()
                if scanner.isAtNewline || scanner.isAtEnd {
                    throw scanner.error("inline table is not closed: expected ',' or '}' on the same line, found \(found)")
                }
                throw scanner.error("expected ',' or '}' in inline table, found \(found)")
            }
            scanner.skipWhitespace()
            if scanner.peek(is: ASCII.closeBrace) {
                throw scanner.error("a trailing comma is not allowed in an inline table")
            }
        }
    }
}
