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
        if !alpn.isEmpty { metadata["alpn"] = .string(alpn.joined(separator: ",")) }
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

/// A log handler that writes a connection's line straight from its fields: one line per connection is the
/// hottest log path, and building, hashing and sorting a metadata dictionary for it costs more than the line.
public protocol ConnectionLineWriter: LogHandler {
    func writeConnectionLine(_ line: ConnectionLogLine, level: Logger.Level)
}
