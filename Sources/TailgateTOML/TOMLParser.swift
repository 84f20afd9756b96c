/// Parses TOML 1.0 documents into tables that remember where every key and
/// value was written.
public enum TOMLParser {
    /// Parses a whole document; throws the first error found.
    ///
    /// - Parameter text: the document. A leading byte order mark is ignored.
    /// - Returns: the root table; its position is 1:1.
    public static func parse(_ text: String) throws(TOMLParseError) -> TOMLTable {
        var parser = DocumentParser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }

    /// Parses a whole document given as UTF-8 bytes; throws the first error found.
    ///
    /// Bytes that are not well-formed UTF-8 are rejected with the position of
    /// the first bad byte (its column counts the scalars before it on its line).
    public static func parse(bytes: [UInt8]) throws(TOMLParseError) -> TOMLTable {
        try validateUTF8(bytes)
        var parser = DocumentParser(bytes: bytes)
        return try parser.parseDocument()
    }
}
