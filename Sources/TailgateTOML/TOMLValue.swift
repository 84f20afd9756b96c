/// The kind and payload of a TOML value.
public indirect enum TOMLValueKind: Sendable {
    /// A basic or literal string, single- or multi-line, with escapes resolved.
    case string(String)
    /// A 64-bit signed integer (decimal, hexadecimal, octal or binary in the source).
    case integer(Int64)
    /// A 64-bit float, including `inf` and `nan`.
    case float(Double)
    /// `true` or `false`.
    case boolean(Bool)
    /// An offset date-time, local date-time, local date or local time.
    case dateTime(TOMLDateTime)
    /// An array: a static `[ ... ]` array or an array of tables built from `[[header]]`s.
    case array([TOMLValue])
    /// A table: the root, a `[header]` table, an implicit table, or an inline `{ ... }` table.
    case table(TOMLTable)
}

/// A TOML value together with where it starts in the source.
public struct TOMLValue: Sendable {
    /// The kind and payload of the value.
    public var kind: TOMLValueKind
    /// Where the value starts: its first character; for a table defined by a
    /// `[header]` or `[[header]]`, the header's `[`; for a table created
    /// implicitly by a header or a dotted key, the key that created it.
    public var position: SourcePosition

    /// Creates a value at a position.
    public init(kind: TOMLValueKind, position: SourcePosition) {
        self.kind = kind
        self.position = position
    }

    /// The TOML type name for messages: "string", "integer", "float",
    /// "boolean", "datetime", "array" or "table".
    public var typeName: String {
        switch kind {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .boolean: "boolean"
        case .dateTime: "datetime"
        case .array: "array"
        case .table: "table"
        }
    }

    /// The string, or nil if the value is not a string.
    public var string: String? {
        if case .string(let value) = kind { value } else { nil }
    }

    /// The integer, or nil if the value is not an integer.
    public var integer: Int64? {
        if case .integer(let value) = kind { value } else { nil }
    }

    /// The float, or nil if the value is not a float. Integers are not converted.
    public var float: Double? {
        if case .float(let value) = kind { value } else { nil }
    }

    /// The boolean, or nil if the value is not a boolean.
    public var bool: Bool? {
        if case .boolean(let value) = kind { value } else { nil }
    }

    /// The date-time, or nil if the value is not a date-time.
    public var dateTime: TOMLDateTime? {
        if case .dateTime(let value) = kind { value } else { nil }
    }

    /// The elements, or nil if the value is not an array.
    public var array: [TOMLValue]? {
        if case .array(let value) = kind { value } else { nil }
    }

    /// The table, or nil if the value is not a table.
    public var table: TOMLTable? {
        if case .table(let value) = kind { value } else { nil }
    }
}
