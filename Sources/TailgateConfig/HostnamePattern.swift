/// A route key: an exact hostname (`app.example.com`) or a wildcard (`*.example.com`).
///
/// Names are compared in lower case without a trailing dot.
public enum HostnamePattern: Sendable, Hashable, CustomStringConvertible {
    case exact(String)
    /// Matches any name that ends with `.suffix` (one or more labels before it). Stores the suffix with its leading dot.
    case wildcard(suffix: String)

    enum Failure: Error, Equatable {
        case empty
        case badWildcard
        case badName
    }

    static func parse(_ text: String) throws(Failure) -> HostnamePattern {
        let name = normalize(text)
        guard !name.isEmpty else { throw .empty }
        if name.hasPrefix("*.") {
            let suffix = String(name.dropFirst(1))
            guard isValidHostname(String(suffix.dropFirst())) else { throw .badWildcard }
            return .wildcard(suffix: suffix)
        }
        guard !name.contains("*") else { throw .badWildcard }
        guard isValidHostname(name) else { throw .badName }
        return .exact(name)
    }

    /// Lower case, one trailing dot removed.
    public static func normalize(_ name: String) -> String {
        let lowered = name.lowercased()
        return lowered.hasSuffix(".") ? String(lowered.dropLast()) : lowered
    }

    /// Letters, digits, hyphens and underscores in dot-separated labels of 1–63 characters, 253 in all.
    static func isValidHostname(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-") else { return false }
            for byte in label.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                     UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    continue
                default:
                    return false
                }
            }
        }
        return true
    }

    public var description: String {
        switch self {
        case .exact(let name): return name
        case .wildcard(let suffix): return "*" + suffix
        }
    }
}
