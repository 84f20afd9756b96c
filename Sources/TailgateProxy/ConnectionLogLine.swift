import Logging
import NIOCore

/// The fields of a connection's log line, in the order an operator reads them.
public struct ConnectionLogLine: Sendable {
    public var listener: String
    public var client: SocketAddress?
    /// The socket peer, when a PROXY header named another client.
    public var peer: SocketAddress?
    public var serverName: String?
    public var alpn: [String]
    public var upstream: String?
    public var server: SocketAddress?
    public var bytesIn: Int
    public var bytesOut: Int
    public var durationMilliseconds: Int64
    public var outcome: ConnectionOutcome
    public var reason: String?

    /// The same fields as swift-log metadata, for handlers that are not a `ConnectionLineWriter`.
    public var metadata: Logger.Metadata {
        var metadata = Logger.Metadata(minimumCapacity: 12)
        metadata["listener"] = .string(listener)
        metadata["client"] = .string(client?.endpointDescription ?? "-")
        if let peer { metadata["peer"] = .string(peer.endpointDescription) }
        metadata["sni"] = .string(serverName ?? "-")
        if let alpn = alpnField { metadata["alpn"] = .string(alpn) }
        metadata["upstream"] = .string(upstream ?? "-")
        metadata["server"] = .string(server?.endpointDescription ?? "-")
        metadata["bytes_in"] = .stringConvertible(bytesIn)
        metadata["bytes_out"] = .stringConvertible(bytesOut)
        metadata["duration_ms"] = .stringConvertible(durationMilliseconds)
        metadata["outcome"] = .string(outcome.rawValue)
        if let reason { metadata["reason"] = .string(reason) }
        return metadata
    }
}

extension ConnectionLogLine {
    /// Protocols the `alpn` field names at most; a count says how many more the client offered.
    static let alpnShown = 4
    /// Bytes of one protocol name the field keeps (real ones are a few bytes: "h2", "http/1.1", "acme-tls/1").
    static let alpnNameLimit = 32

    /// The `alpn` field: the first protocols the client offered, each cut to a sane length, and "+N" for the
    /// rest. A ClientHello may offer hundreds of bytes of names; the line's size must not follow it, or a
    /// client could make every one of its connections write kilobytes to the log.
    public var alpnField: String? {
        guard !alpn.isEmpty else { return nil }
        var field = ""
        for (index, name) in alpn.prefix(Self.alpnShown).enumerated() {
            if index > 0 { field += "," }
            if name.utf8.count <= Self.alpnNameLimit {
                field += name
            } else {
                // Cut on a character boundary, and say so.
                var length = 0
                for scalar in name.unicodeScalars {
                    length += scalar.utf8.count
                    guard length <= Self.alpnNameLimit else { break }
                    field.unicodeScalars.append(scalar)
                }
                field += "~"
            }
        }
        if alpn.count > Self.alpnShown { field += ",+\(alpn.count - Self.alpnShown)" }
        return field
    }
}

/// A log handler that writes a connection's line straight from its fields: one line per connection is the
/// hottest log path, and building, hashing and sorting a metadata dictionary for it costs more than the line.
public protocol ConnectionLineWriter: LogHandler {
    func writeConnectionLine(_ line: ConnectionLogLine, level: Logger.Level)
}
