/// The body of CrowdSec's Local API `GET /v1/decisions/stream`: decisions new since the bouncer's last pull,
/// and decisions deleted or expired. Pure: parsed from bytes.
public struct CrowdSecDecisions: Equatable, Sendable {
    public struct Decision: Equatable, Sendable {
        /// `Ip` or `Range` (other scopes, such as `Country` or `AS`, are not addresses and are skipped by the bouncer).
        public var scope: String
        /// An address or a prefix.
        public var value: String
        /// `ban`, `captcha`, …
        public var type: String
        /// Time left (Go's duration text, e.g. `3h59m58.2s`); nil when it cannot be read.
        public var duration: Duration?
        public var scenario: String
        public var origin: String
    }

    public var new: [Decision]
    public var deleted: [Decision]

    public static func parse(_ bytes: [UInt8]) throws(JSONValue.ParseError) -> CrowdSecDecisions {
        let document = try JSONValue.parse(bytes)
        guard case .object = document else { throw JSONValue.ParseError(offset: 0, message: "expected an object with \"new\" and \"deleted\"") }
        func decisions(_ key: String) -> [Decision] {
            (document[key]?.arrayValue ?? []).compactMap { item in
                guard let value = item["value"]?.stringValue, let scope = item["scope"]?.stringValue else { return nil }
                return Decision(
                    scope: scope, value: value, type: item["type"]?.stringValue ?? "ban",
                    duration: item["duration"]?.stringValue.flatMap(Self.goDuration),
                    scenario: item["scenario"]?.stringValue ?? "", origin: item["origin"]?.stringValue ?? ""
                )
            }
        }
        return CrowdSecDecisions(new: decisions("new"), deleted: decisions("deleted"))
    }

    /// Go's `time.Duration.String()`: `1h2m3.5s`, `250ms`, `-9.5ms`, `0s`; nil for anything else.
    public static func goDuration(_ text: String) -> Duration? {
        var bytes = Array(text.utf8)[...]
        var negative = false
        if bytes.first == UInt8(ascii: "-") { negative = true; bytes = bytes.dropFirst() }
        guard !bytes.isEmpty else { return nil }
        var total: Double = 0
        while !bytes.isEmpty {
            let numberEnd = bytes.firstIndex { !((UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ".")) } ?? bytes.endIndex
            guard numberEnd > bytes.startIndex, let number = Double(String(decoding: bytes[bytes.startIndex..<numberEnd], as: UTF8.self)) else { return nil }
            bytes = bytes[numberEnd...]
            let unitEnd = bytes.firstIndex { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? bytes.endIndex
            let unit = String(decoding: bytes[bytes.startIndex..<unitEnd], as: UTF8.self)
            bytes = bytes[unitEnd...]
            let scale: Double
            switch unit {
            case "h": scale = 3_600
            case "m": scale = 60
            case "s": scale = 1
            case "ms": scale = 1e-3
            case "us", "µs", "μs": scale = 1e-6
            case "ns": scale = 1e-9
            default: return nil
            }
            total += number * scale
        }
        guard total.isFinite, total < 1e10 else { return nil }
        let milliseconds = Int64((negative ? -total : total) * 1_000)
        return .milliseconds(milliseconds)
    }
}
