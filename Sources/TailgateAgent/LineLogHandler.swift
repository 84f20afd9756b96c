import Logging
import TailgateConfig

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one line per log record to stderr: `logfmt`-style text or JSON lines (for Loki and friends).
///
/// journald adds its own timestamps; the line still carries one so that files and pipes are readable.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let format: LogConfiguration.Format
    private let label: String

    public init(label: String, format: LogConfiguration.Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata {
            merged.merge(extra) { _, new in new }
        }
        var bytes: [UInt8]
        switch format {
        case .text: bytes = Self.textLine(level: event.level, message: "\(event.message)", metadata: merged)
        case .json: bytes = Array(Self.jsonLine(level: event.level, message: "\(event.message)", metadata: merged).utf8)
        }
        bytes.append(UInt8(ascii: "\n"))
        Self.writeToStandardError(bytes)
    }

    /// One write(2) per line where possible, so lines from several threads do not interleave.
    static func writeToStandardError(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = write(2, base + offset, raw.count - offset)
                if written < 0, errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
    }

    /// `time level message key=value…`: other keys sorted first, then the connection fields in reading order.
    static func textLine(level: Logger.Level, message: String, metadata: Logger.Metadata) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        Timestamp.appendNow(to: &line)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: level.rawValue.utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: message.utf8)
        if metadata.contains(where: { !orderedKeySet.contains($0.key) }) {
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where !orderedKeySet.contains(key) {
                appendField(key, value, to: &line)
            }
        }
        for key in orderedKeys {
            if let value = metadata[key] { appendField(key, value, to: &line) }
        }
        return line
    }

    /// Connection-log fields in the order an operator reads them.
    private static let orderedKeys = [
        "listener", "client", "peer", "sni", "alpn", "upstream", "server", "bytes_in", "bytes_out", "duration_ms", "outcome", "reason",
    ]
    private static let orderedKeySet = Set(orderedKeys)

    private static func appendField(_ key: String, _ value: Logger.Metadata.Value, to line: inout [UInt8]) {
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: key.utf8)
        line.append(UInt8(ascii: "="))
        let text: String
        switch value {
        case .string(let string): text = string
        case .stringConvertible(let convertible): text = convertible.description
        default: text = "\(value)"
        }
        let needsQuotes = text.isEmpty || text.utf8.contains { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") || $0 < 0x20 || $0 == 0x7F }
        if needsQuotes {
            line.append(contentsOf: JSONText.quote(text).utf8)
        } else {
            line.append(contentsOf: text.utf8)
        }
    }

    static func jsonLine(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "{\"time\":\(JSONText.quote(Timestamp.now())),\"level\":\(JSONText.quote(level.rawValue)),\"msg\":\(JSONText.quote(message))"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += ",\(JSONText.quote(key)):"
            if case .stringConvertible(let number) = value, number is Int || number is Int64 {
                line += "\(number)"
            } else {
                line += JSONText.quote("\(value)")
            }
        }
        return line + "}"
    }
}
