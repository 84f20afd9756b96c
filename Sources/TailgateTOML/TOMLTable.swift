/// A TOML table: its key/value pairs in document order and where it starts.
public struct TOMLTable: Sendable {
    /// One key/value pair of a table.
    public struct Entry: Sendable {
        /// The key, unquoted and with escapes resolved (one component of a dotted key).
        public var key: String
        /// Where the key is written: its first character (the quote for a quoted key).
        /// For a table created by a header or dotted key, the key that first created it.
        public var keyPosition: SourcePosition
        /// The value.
        public var value: TOMLValue

        /// Creates an entry.
        public init(key: String, keyPosition: SourcePosition, value: TOMLValue) {
            self.key = key
            self.keyPosition = keyPosition
            self.value = value
        }
    }

    /// The pairs in the order their keys first appear in the document.
    public var entries: [Entry]
    /// The header's `[` for a `[header]` or `[[header]]` table, the `{` of an
    /// inline table, the creating key of an implicit table, or 1:1 for the root.
    public var position: SourcePosition

    /// Creates a table.
    public init(entries: [Entry] = [], position: SourcePosition = SourcePosition(line: 1, column: 1)) {
        self.entries = entries
        self.position = position
    }

    /// The value for `key`, or nil if the table has no such key. Looks up one
    /// key, not a dotted path.
    public subscript(key: String) -> TOMLValue? {
        entry(key)?.value
    }

    /// The entry for `key`, or nil if the table has no such key.
    public func entry(_ key: String) -> Entry? {
        entries.first { $0.key == key }
    }

    /// The keys in document order.
    public var keys: [String] {
        entries.map(\.key)
    }
}
