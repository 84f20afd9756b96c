import Foundation
import TailgateTOML

/// toml-test's JSON encoding of a document: tables are objects, arrays are
/// arrays, and every scalar is `{"type": "...", "value": "..."}`.
indirect enum TaggedJSON: Decodable {
    case table([String: TaggedJSON])
    case array([TaggedJSON])
    case scalar(type: String, value: String)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let elements = try? container.decode([TaggedJSON].self) {
            self = .array(elements)
        } else if let pair = try? container.decode([String: String].self), Set(pair.keys) == ["type", "value"],
            let type = pair["type"], let value = pair["value"]
        {
            self = .scalar(type: type, value: value)
        } else {
            self = .table(try container.decode([String: TaggedJSON].self))
        }
    }

    init(_ table: TOMLTable) {
        var members: [String: TaggedJSON] = [:]
        for entry in table.entries { members[entry.key] = TaggedJSON(entry.value) }
        self = .table(members)
    }

    init(_ value: TOMLValue) {
        switch value.kind {
        case .string(let string): self = .scalar(type: "string", value: string)
        case .integer(let integer): self = .scalar(type: "integer", value: String(integer))
        case .float(let float): self = .scalar(type: "float", value: float.isNaN ? "nan" : String(float))
        case .boolean(let bool): self = .scalar(type: "bool", value: String(bool))
        case .array(let elements): self = .array(elements.map(TaggedJSON.init))
        case .table(let table): self = TaggedJSON(table)
        case .dateTime(let dateTime):
            let type = switch (dateTime.date != nil, dateTime.time != nil, dateTime.offset != nil) {
            case (true, true, true): "datetime"
            case (true, true, false): "datetime-local"
            case (true, false, _): "date-local"
            default: "time-local"
            }
            self = .scalar(type: type, value: dateTime.description)
        }
    }

    /// A description of the first difference between `self` (expected) and
    /// `actual`, or nil if they match. Floats compare numerically (nan equals
    /// nan) and date-times compare by value, as toml-test does.
    func difference(from actual: TaggedJSON, at path: String = "") -> String? {
        switch (self, actual) {
        case (.table(let expected), .table(let actual)):
            if Set(expected.keys) != Set(actual.keys) {
                return "\(path.isEmpty ? "root" : path): keys \(expected.keys.sorted()) expected, got \(actual.keys.sorted())"
            }
            for key in expected.keys.sorted() {
                // Both dictionaries have the same keys here.
                if let expectedValue = expected[key], let actualValue = actual[key],
                    let difference = expectedValue.difference(from: actualValue, at: path + "." + key)
                {
                    return difference
                }
            }
            return nil
        case (.array(let expected), .array(let actual)):
            guard expected.count == actual.count else {
                return "\(path): \(expected.count) elements expected, got \(actual.count)"
            }
            for (index, pair) in zip(expected, actual).enumerated() {
                if let difference = pair.0.difference(from: pair.1, at: "\(path)[\(index)]") { return difference }
            }
            return nil
        case (.scalar(let expectedType, let expectedValue), .scalar(let actualType, let actualValue)):
            if expectedType == actualType && Self.scalarsMatch(type: expectedType, expectedValue, actualValue) { return nil }
            return "\(path): expected \(expectedType) '\(expectedValue)', got \(actualType) '\(actualValue)'"
        default:
            return "\(path): expected \(self.shape), got \(actual.shape)"
        }
    }

    private var shape: String {
        switch self {
        case .table: "table"
        case .array: "array"
        case .scalar(let type, _): type
        }
    }

    private static func scalarsMatch(type: String, _ expected: String, _ actual: String) -> Bool {
        switch type {
        case "float":
            guard let lhs = parseFloat(expected), let rhs = parseFloat(actual) else { return false }
            return lhs == rhs || (lhs.isNaN && rhs.isNaN)
        case "integer":
            return Int64(expected) != nil && Int64(expected) == Int64(actual)
        case "datetime", "datetime-local", "date-local", "time-local":
            return normalizedDateTime(expected) == normalizedDateTime(actual)
        default:
            return expected == actual
        }
    }

    private static func parseFloat(_ text: String) -> Double? {
        switch text {
        case "inf", "+inf": .infinity
        case "-inf": -.infinity
        case "nan", "+nan", "-nan": .nan
        default: Double(text)
        }
    }

    /// Uppercase separators, `Z` as `+00:00`, fractional seconds without trailing zeros.
    static func normalizedDateTime(_ text: String) -> String {
        var result = text.uppercased().replacingOccurrences(of: " ", with: "T")
        if result.hasSuffix("Z") { result = String(result.dropLast()) + "+00:00" }
        if result.hasSuffix("-00:00") { result = String(result.dropLast(6)) + "+00:00" }
        guard let dot = result.firstIndex(of: ".") else { return result }
        let digitsEnd = result[result.index(after: dot)...].firstIndex { !$0.isNumber } ?? result.endIndex
        var fraction = String(result[result.index(after: dot)..<digitsEnd])
        while fraction.last == "0" { fraction.removeLast() }
        return String(result[..<dot]) + (fraction.isEmpty ? "" : "." + fraction) + String(result[digitsEnd...])
    }
}
