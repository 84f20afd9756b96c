/// A location in a TOML document.
///
/// Both numbers are 1-based. `column` counts Unicode scalars (not bytes and not
/// grapheme clusters) from the start of the line, so `é` written as one scalar
/// advances it by one. A tab counts as one column.
public struct SourcePosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The 1-based line number. Lines end at LF; a CRLF pair ends one line.
    public var line: Int
    /// The 1-based column, counted in Unicode scalars.
    public var column: Int

    /// Creates a position from a 1-based line and column.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// The position as `line:column`, for example `3:14`.
    public var description: String { "\(line):\(column)" }

    /// Orders positions as they appear in the document.
    public static func < (lhs: SourcePosition, rhs: SourcePosition) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}
