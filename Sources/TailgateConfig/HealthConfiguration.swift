import NIOCore

/// The `[health]` table: where the HTTP health, status and metrics endpoint listens.
public struct HealthConfiguration: Sendable {
    public var listen: [Located<SocketAddress>]
}

/// How an upstream's servers are checked (`check*`, `rise`, `fall` in `[upstreams.NAME]`).
public struct UpstreamCheckConfiguration: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case none, tcp, tls, https

        /// Whether the check runs a TLS handshake (and verifies the certificate).
        public var usesTLS: Bool { self == .tls || self == .https }
    }
    public var kind: Kind = .none
    /// The path an `https` check asks for (`check_path`).
    public var path = "/"
    public var interval: Duration = .seconds(10)
    public var timeout: Duration = .seconds(2)
    /// SNI and the name the certificate must carry; by default the first exact route name that points here.
    public var serverName: String?
    /// PEM bundle to verify against instead of the system store, and where it was written.
    public var caFile: Located<String>?
    public var rise = 2
    public var fall = 3

    public init() {}
}
