/// What ``ClientHelloSniffer`` extracted from a TLS ClientHello.
public struct ClientHelloInfo: Sendable, Equatable {
    /// The `host_name` of the `server_name` extension (RFC 6066 §3), lowercased ASCII without a
    /// trailing dot; nil when the client sent no `server_name` extension.
    public var serverName: String?

    /// The protocol names of the `application_layer_protocol_negotiation` extension (RFC 7301 §3.1),
    /// in the client's order; empty when the client sent none.
    ///
    /// Names that are not valid UTF-8 (such as GREASE values) are decoded with replacement characters.
    public var alpn: [String]

    /// The ClientHello's `legacy_version` (`client_version` before TLS 1.3), for example `0x0303`.
    public var legacyVersion: UInt16

    /// The number of bytes of the TLS records that held the whole ClientHello, record headers
    /// included: the proxy relays exactly these bytes before anything else.
    public var byteCount: Int

    /// Creates the information of a ClientHello.
    public init(serverName: String?, alpn: [String], legacyVersion: UInt16, byteCount: Int) {
        self.serverName = serverName
        self.alpn = alpn
        self.legacyVersion = legacyVersion
        self.byteCount = byteCount
    }
}
