/// One part of a dotted key, as written.
struct KeyComponent {
    var name: String
    var position: SourcePosition
}

/// Parses a document line by line: comments, `[table]` and `[[array]]`
/// headers, and `key = value` pairs, assembling them into a table tree.
struct DocumentParser {
    /// Deepest nesting of arrays and inline tables, and most parts in one dotted key.
    static let nestingLimit = 128

    var scanner: Scanner
    let root: TableNode
    /// The table that `key = value` lines go into (the last header's table).
    var current: TableNode

    init(bytes: [UInt8]) {
        scanner = Scanner(bytes: bytes)
        root = TableNode(origin: .root, position: SourcePosition(line: 1, column: 1))
        current = root
    }

    mutating func parseDocument() throws(TOMLParseError) -> TOMLTable {
        while true {
            scanner.skipWhitespace()
            guard let byte = scanner.peek() else { break }
            switch byte {
            case ASCII.hash:
                try skipComment()
            case ASCII.lineFeed, ASCII.carriageReturn:
                guard scanner.consumeNewline() else {
                    throw scanner.error("carriage return must be followed by a line feed")
                }
            case ASCII.openBracket:
                try parseHeader()
                try expectEndOfLine(after: "table header")
            default:
                try parseKeyValue(into: current, depth: 0)
                try expectEndOfLine(after: "value")
            }
        }
        return root.frozen()
    }

    /// Skips a `#` comment up to (not including) the end of the line.
    mutating func skipComment() throws(TOMLParseError) {
        scanner.advance()
        while let byte = scanner.peek(), !scanner.isAtNewline {
            if ASCII.isForbiddenControl(byte) {
                throw scanner.error("\(scanner.describeCurrent()) is not allowed in a comment")
            }
            scanner.advance()
        }
    }

    /// After a header or value only whitespace and a comment may follow on the line.
    mutating func expectEndOfLine(after what: String) throws(TOMLParseError) {
        scanner.skipWhitespace()
        if scanner.peek(is: ASCII.hash) { try skipComment() }
        if scanner.isAtEnd || scanner.consumeNewline() { return }
        throw scanner.error("expected end of line after \(what), found \(scanner.describeCurrent())")
    }

    /// Parses `[a.b]` or `[[a.b]]` and makes its table current.
    mutating func parseHeader() throws(TOMLParseError) {
        let start = scanner.position
        scanner.advance()
        let isArray = scanner.consume(ASCII.openBracket)
        scanner.skipWhitespace()
        let key = try parseKey()
        if isArray {
            guard scanner.peek(is: ASCII.closeBracket), scanner.peek(is: ASCII.closeBracket, 1) else {
                throw scanner.error("expected ']]' to close array-of-tables header, found \(scanner.describeCurrent())")
            }
            scanner.advance(by: 2)
            current = try appendTableArrayElement(key: key, header: start)
        } else {
            guard scanner.consume(ASCII.closeBracket) else {
                throw scanner.error("expected ']' to close table header, found \(scanner.describeCurrent())")
            }
            current = try defineTable(key: key, header: start)
        }
    }

    /// Parses `key = value` and inserts the value into `table`.
    mutating func parseKeyValue(into table: TableNode, depth: Int) throws(TOMLParseError) {
        let key = try parseKey()
        guard scanner.consume(ASCII.equals) else {
            throw scanner.error("expected '=' after key '\(displayPath(key[...]))', found \(scanner.describeCurrent())")
        }
        scanner.skipWhitespace()
        let value = try parseValue(depth: depth)
        try insert(value, at: key, into: table)
    }

    /// Parses a possibly dotted key and the whitespace after it.
    mutating func parseKey() throws(TOMLParseError) -> [KeyComponent] {
        var components: [KeyComponent] = []
        while true {
            if components.count == Self.nestingLimit {
                throw scanner.error("key has more than \(Self.nestingLimit) dotted parts")
            }
            components.append(try parseKeyComponent())
            scanner.skipWhitespace()
            guard scanner.consume(ASCII.dot) else { return components }
            scanner.skipWhitespace()
        }
    }

    private mutating func parseKeyComponent() throws(TOMLParseError) -> KeyComponent {
        let start = scanner.position
        switch scanner.peek() {
        case ASCII.quote:
            return KeyComponent(name: try parseBasicString(allowMultiline: false), position: start)
        case ASCII.apostrophe:
            return KeyComponent(name: try parseLiteralString(allowMultiline: false), position: start)
        default:
            let begin = scanner.offset
            while let byte = scanner.peek(), ASCII.isBareKey(byte) { scanner.advance() }
            guard scanner.offset > begin else {
                throw scanner.error("expected a key, found \(scanner.describeCurrent())")
            }
            return KeyComponent(name: String(decoding: scanner.bytes[begin..<scanner.offset], as: UTF8.self), position: start)
        }
    }
}

/// Renders a dotted key for messages, quoting parts that are not bare keys.
func displayPath(_ components: ArraySlice<KeyComponent>) -> String {
    components.map { component in
        let name = component.name
        if !name.isEmpty && name.utf8.allSatisfy(ASCII.isBareKey) { return name }
        var quoted = "\""
        for scalar in name.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }.joined(separator: ".")
}
