import Logging
import NIOCore
import Synchronization
import TailgateConfig
import TailgateProxy
import TailgateSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `[log]` table in force, read by every `LineLogHandler` on each record: a reload that changes the
/// level or the format changes it for every logger at once, including those made before.
public final class LogSettings: Sendable {
    public static let shared = LogSettings()

    /// `Logger.Level` by its position in `LogConfiguration.Level`'s cases (debug … error).
    private let level = Atomic<Int>(1)
    private let json = Atomic<Bool>(false)

    public func apply(_ configuration: LogConfiguration) {
        level.store(LogConfiguration.Level.allCases.firstIndex(of: configuration.level) ?? 1, ordering: .relaxed)
        json.store(configuration.format == .json, ordering: .relaxed)
        LogOutput.standardError.setCapacity(configuration.bufferBytes)
    }

    var currentLevel: Logger.Level {
        switch level.load(ordering: .relaxed) {
        case 0: .debug
        case 1: .info
        case 2: .warning
        default: .error
        }
    }

    var currentFormat: LogConfiguration.Format { json.load(ordering: .relaxed) ? .json : .text }
}

/// Writes one line per log record to stderr: `logfmt`-style text or JSON lines (for Loki and friends).
///
/// journald adds its own timestamps; the line still carries one so that files and pipes are readable.
/// The level and format are the `[log]` table's in force (`LogSettings`), unless a logger sets its own level.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    private var ownLevel: Logger.Level?
    private let settings: LogSettings
    private let label: String

    public init(label: String, settings: LogSettings = .shared) {
        self.label = label
        self.settings = settings
    }

    public var logLevel: Logger.Level {
        get { ownLevel ?? settings.currentLevel }
        set { ownLevel = newValue }
    }

    private var format: LogConfiguration.Format { settings.currentFormat }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        write(level: event.level, message: "\(event.message)", metadata: event.metadata)
    }

    private func write(level: Logger.Level, message: String, metadata extra: Logger.Metadata?) {
        var merged = self.metadata
        if let extra {
            if merged.isEmpty {
                merged = extra
            } else {
                merged.merge(extra) { _, new in new }
            }
        }
        var bytes: [UInt8]
        switch format {
        case .text: bytes = Self.textLine(level: level, message: message, metadata: merged)
        case .json: bytes = Array(Self.jsonLine(level: level, message: message, metadata: merged).utf8)
        }
        bytes.append(UInt8(ascii: "\n"))
        LogOutput.standardError.write(bytes, mayWait: level <= .info)
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
        // The connection fields are looked up once; only a line with other keys pays for sorting.
        var ordered: [(String, Logger.Metadata.Value)] = []
        ordered.reserveCapacity(min(metadata.count, orderedKeys.count))
        for key in orderedKeys {
            if let value = metadata[key] { ordered.append((key, value)) }
        }
        if ordered.count < metadata.count {
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where !orderedKeySet.contains(key) {
                appendField(key, value, to: &line)
            }
        }
        for (key, value) in ordered {
            appendField(key, value, to: &line)
        }
        return line
    }

    /// Connection-log fields in the order an operator reads them.
    private static let orderedKeys = [
        "listener", "client", "peer", "sni", "alpn", "upstream", "server", "bytes_in", "bytes_out", "duration_ms", "outcome", "reason",
    ]
    private static let orderedKeySet = Set(orderedKeys)

    private static func appendField(_ key: String, _ value: Logger.Metadata.Value, to line: inout [UInt8]) {
        let text: String
        switch value {
        case .string(let string): text = string
        case .stringConvertible(let convertible): text = convertible.description
        default: text = "\(value)"
        }
        appendField(key, text, to: &line)
    }

    /// ` key=value`, the value quoted when it is empty or holds a space, a quote, `=` or a control character.
    private static func appendField(_ key: String, _ text: String, to line: inout [UInt8]) {
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: key.utf8)
        line.append(UInt8(ascii: "="))
        let needsQuotes = text.isEmpty || text.utf8.contains { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") || $0 < 0x20 || $0 == 0x7F }
        if needsQuotes {
            JSONText.appendQuoted(text, to: &line)
        } else {
            line.append(contentsOf: text.utf8)
        }
    }

    /// The warning that owns up to lines the log writer dropped while standard error was not being read.
    static func lossLine(dropped: Int, settings: LogSettings = .shared) -> [UInt8] {
        let message = "log lines dropped: standard error was not being read"
        let metadata: Logger.Metadata = ["dropped_lines": .stringConvertible(dropped)]
        var line = settings.currentFormat == .json
            ? Array(jsonLine(level: .warning, message: message, metadata: metadata).utf8)
            : textLine(level: .warning, message: message, metadata: metadata)
        line.append(UInt8(ascii: "\n"))
        return line
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

extension LineLogHandler: ConnectionLineWriter {
    /// The text line is built straight from the fields (same bytes as the metadata path); JSON, or a handler
    /// with metadata of its own, takes the general path.
    public func writeConnectionLine(_ fields: ConnectionLogLine, level: Logger.Level) {
        guard format == .text, metadata.isEmpty else {
            write(level: level, message: "connection", metadata: fields.metadata)
            return
        }
        LogOutput.standardError.write(Self.connectionTextLine(fields, level: level), mayWait: level <= .info)
    }

    /// The text connection line, with its newline: byte for byte what `textLine` makes of `fields.metadata`.
    static func connectionTextLine(_ fields: ConnectionLogLine, level: Logger.Level) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(320)
        Timestamp.appendNow(to: &line)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: level.rawValue.utf8)
        line.append(contentsOf: " connection".utf8)
        Self.appendField("listener", fields.listener, to: &line)
        Self.appendAddressField(" client=", fields.client, to: &line)
        if let peer = fields.peer { Self.appendAddressField(" peer=", peer, to: &line) }
        Self.appendField("sni", fields.serverName ?? "-", to: &line)
        if let alpn = fields.alpnField { Self.appendField("alpn", alpn, to: &line) }
        Self.appendField("upstream", fields.upstream ?? "-", to: &line)
        Self.appendAddressField(" server=", fields.server, to: &line)
        line.append(contentsOf: " bytes_in=".utf8)
        SocketAddress.appendDecimal(fields.bytesIn, to: &line)
        line.append(contentsOf: " bytes_out=".utf8)
        SocketAddress.appendDecimal(fields.bytesOut, to: &line)
        line.append(contentsOf: " duration_ms=".utf8)
        SocketAddress.appendDecimal(Int(fields.durationMilliseconds), to: &line)
        line.append(contentsOf: " outcome=".utf8)
        line.append(contentsOf: fields.outcome.rawValue.utf8)
        if let reason = fields.reason { Self.appendField("reason", reason, to: &line) }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// An address never needs quotes (digits, dots, colons, brackets); "-" when there is none.
    private static func appendAddressField(_ prefix: StaticString, _ address: SocketAddress?, to line: inout [UInt8]) {
        prefix.withUTF8Buffer { line.append(contentsOf: $0) }
        if let address {
            address.appendEndpointDescription(to: &line)
        } else {
            line.append(UInt8(ascii: "-"))
        }
    }
}
