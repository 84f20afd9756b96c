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
        let line: String
        switch format {
        case .text: line = Self.textLine(level: event.level, message: "\(event.message)", metadata: merged)
        case .json: line = Self.jsonLine(level: event.level, message: "\(event.message)", metadata: merged)
        }
        var bytes = Array(line.utf8)
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

    static func textLine(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(Timestamp.now()) \(level.rawValue) \(message)"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where !orderedKeys.contains(key) {
            line += " \(key)=\(textValue(value))"
        }
        for key in orderedKeys {
            if let value = metadata[key] { line += " \(key)=\(textValue(value))" }
        }
        return line
    }

    /// Connection-log fields in the order an operator reads them.
    private static let orderedKeys = [
        "listener", "client", "peer", "sni", "alpn", "upstream", "server", "bytes_in", "bytes_out", "duration_ms", "outcome", "reason",
    ]

    private static func textValue(_ value: Logger.Metadata.Value) -> String {
        let text = "\(value)"
        let needsQuotes = text.isEmpty || text.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }
        return needsQuotes ? JSONText.quote(text) : text
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
