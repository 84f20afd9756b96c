import TailgateTOML

/// Collects configuration errors, and warnings (valid but probably not meant), for one file.
final class ErrorCollector {
    let file: String
    private(set) var errors: [ConfigurationError] = []
    private(set) var warnings: [ConfigurationError] = []

    func warn(_ message: String, at position: SourcePosition, path: String) {
        warnings.append(ConfigurationError(file: file, position: position, keyPath: path, message: "warning: " + message))
    }

    init(file: String) {
        self.file = file
    }

    func add(_ message: String, at position: SourcePosition, path: String) {
        errors.append(ConfigurationError(file: file, position: position, keyPath: path, message: message))
    }

    func appendError(_ error: ConfigurationError) {
        errors.append(error)
    }
}

/// Reads typed keys from one TOML table, reporting wrong types and, at the end, unknown keys.
struct TableReader {
    let table: TOMLTable
    let path: String
    let errors: ErrorCollector
    private var used: Set<String> = []

    init(_ table: TOMLTable, path: String, errors: ErrorCollector) {
        self.table = table
        self.path = path
        self.errors = errors
    }

    func keyPath(_ key: String) -> String {
        let quoted = key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") } ? key : "\"\(key)\""
        return path.isEmpty ? quoted : "\(path).\(quoted)"
    }

    /// The raw value of `key`, marked as used.
    mutating func value(_ key: String) -> TOMLValue? {
        used.insert(key)
        return table[key]
    }

    mutating func typed<T>(_ key: String, _ expected: String, _ extract: (TOMLValue) -> T?) -> Located<T>? {
        guard let value = value(key) else { return nil }
        guard let result = extract(value) else {
            errors.add("expected \(expected), found \(value.typeName)", at: value.position, path: keyPath(key))
            return nil
        }
        return Located(result, at: value.position)
    }

    mutating func string(_ key: String) -> Located<String>? {
        typed(key, "a string", \.string)
    }

    mutating func table(_ key: String) -> Located<TOMLTable>? {
        typed(key, "a table", \.table)
    }

    /// An integer within `range`.
    mutating func integer(_ key: String, in range: ClosedRange<Int64>) -> Located<Int>? {
        guard let value = typed(key, "an integer", \.integer) else { return nil }
        guard range.contains(value.value) else {
            errors.add("\(value.value) is out of range \(range.lowerBound)…\(range.upperBound)", at: value.position, path: keyPath(key))
            return nil
        }
        return Located(Int(value.value), at: value.position)
    }

    /// A size in bytes written as `"64KiB"`, `"4MiB"` or `"1GiB"` (or a plain integer of bytes), within `range`.
    mutating func byteSize(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let raw = value(key) else { return nil }
        let bytes: Int?
        if let integer = raw.integer {
            bytes = Int(exactly: integer)
        } else if let text = raw.string {
            let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)]
            let unit = units.first { text.hasSuffix($0.0) }
            bytes = unit.flatMap { unit in Int(text.dropLast(unit.0.count)).map { $0 * unit.1 } }
        } else {
            bytes = nil
        }
        guard let bytes else {
            errors.add("expected a size like \"64KiB\", \"4MiB\" or \"1GiB\", found \(raw.string.map { "\"\($0)\"" } ?? raw.typeName)",
                       at: raw.position, path: keyPath(key))
            return nil
        }
        guard range.contains(bytes) else {
            errors.add("\(bytes) bytes is out of range \(range.lowerBound / 1_024)KiB…\(range.upperBound >> 20)MiB", at: raw.position, path: keyPath(key))
            return nil
        }
        return bytes
    }

    /// A duration string such as `"5s"`, at least `minimum`.
    mutating func duration(_ key: String, minimum: Duration = .milliseconds(1)) -> Duration? {
        guard let raw = value(key) else { return nil }
        guard let text = raw.string else {
            let hint = raw.integer.map { " (write \"\($0)s\" for seconds)" } ?? ""
            errors.add("expected a duration string like \"5s\" or \"250ms\", found \(raw.typeName)\(hint)", at: raw.position, path: keyPath(key))
            return nil
        }
        do {
            let duration = try DurationParser.parse(text)
            guard duration >= minimum else {
                let least = minimum.wholeMilliseconds % 1_000 == 0 ? "\(minimum.wholeMilliseconds / 1_000)s" : "\(minimum.wholeMilliseconds)ms"
                errors.add("duration \"\(text)\" is too short (at least \(least))", at: raw.position, path: keyPath(key))
                return nil
            }
            return duration
        } catch {
            let reason: String
            switch error {
            case .empty: reason = "is empty"
            case .missingUnit: reason = "needs a unit (ms, s, m, h, d)"
            case .unknownUnit(let unit): reason = "has an unknown unit '\(unit)' (use ms, s, m, h, d)"
            case .missingNumber: reason = "needs a number before each unit"
            case .overflow: reason = "is too large"
            }
            errors.add("invalid duration \"\(text)\": it \(reason)", at: raw.position, path: keyPath(key))
            return nil
        }
    }

    /// An array whose elements pass `extract`; a single element is not accepted in place of an array.
    mutating func array<T>(_ key: String, of expected: String, _ extract: (TOMLValue, String) -> T?) -> [T]? {
        guard let raw = value(key) else { return nil }
        guard let elements = raw.array else {
            errors.add("expected an array of \(expected), found \(raw.typeName)", at: raw.position, path: keyPath(key))
            return nil
        }
        return elements.enumerated().compactMap { index, element in
            extract(element, "\(keyPath(key))[\(index)]")
        }
    }

    /// A string naming one of `choices`.
    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) -> T? where T.RawValue == String {
        guard let text = string(key) else { return nil }
        guard let choice = T(rawValue: text.value) else {
            let names = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            errors.add("unknown value \"\(text.value)\"; expected one of \(names)", at: text.position, path: keyPath(key))
            return nil
        }
        return choice
    }

    /// Reports every key that no reader asked for.
    func reportUnknownKeys(expected: [String]) {
        for entry in table.entries where !used.contains(entry.key) {
            let suggestion = expected.first { Self.isNearMiss(entry.key, $0) }.map { "; did you mean '\($0)'?" } ?? ""
            let known = expected.isEmpty ? "" : " (known keys: \(expected.joined(separator: ", ")))"
            errors.add("unknown key '\(entry.key)'\(suggestion.isEmpty ? known : suggestion)", at: entry.keyPosition, path: keyPath(entry.key))
        }
    }

    /// A typo distance of at most two edits.
    static func isNearMiss(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8), b = Array(rhs.utf8)
        guard abs(a.count - b.count) <= 2 else { return false }
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count] <= 2
    }
}
