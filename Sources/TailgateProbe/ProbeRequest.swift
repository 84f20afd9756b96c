import NIOCore

/// One active health check of an upstream server: what to connect to, and how far to go.
public struct ProbeRequest: Sendable {
    /// How far a check goes.
    public enum Kind: Sendable {
        /// A TCP connect (and the PROXY preamble, when set); healthy once the connection is up.
        case tcp
        /// A full TLS handshake with certificate verification; healthy when the certificate is
        /// trusted, current, and (with a `serverName`) for that name.
        case tls
    }

    /// A PROXY protocol header sent before anything else, for upstreams that listen with
    /// `proxy_protocol` and reject connections without one.
    public enum ProxyPreamble: Sendable {
        /// No header.
        case none
        /// The v1 line `PROXY UNKNOWN\r\n`.
        case v1
        /// A v2 LOCAL header without addresses, as load balancers send for their own checks.
        case v2
    }

    /// How far the check goes.
    public var kind: Kind
    /// The upstream's address (IPv4, IPv6, or a UNIX domain socket).
    public var server: SocketAddress
    /// The limit for the whole check: connect, preamble and handshake.
    public var timeout: Duration
    /// For `.tls`: the name sent as SNI and the name the certificate must be for. nil sends no
    /// SNI and skips the name check (the chain and validity dates are still checked). An IP
    /// address is checked against the certificate's IP addresses and never sent as SNI.
    public var serverName: String?
    /// For `.tls`: a PEM file of the certificate authorities to trust; nil trusts the system store.
    public var caFile: String?
    /// The PROXY protocol header to send first, for both kinds.
    public var preamble: ProxyPreamble
    /// For `.tls`: after the handshake, ask for this path (`GET`, `Host` the server name) and be healthy
    /// only on a 2xx or 3xx answer. nil stops at the handshake.
    public var httpPath: String?

    /// A check of `server` within `timeout`; see the properties for the rest.
    public init(
        kind: Kind,
        server: SocketAddress,
        timeout: Duration,
        serverName: String? = nil,
        caFile: String? = nil,
        preamble: ProxyPreamble = .none,
        httpPath: String? = nil
    ) {
        self.kind = kind
        self.server = server
        self.timeout = timeout
        self.serverName = serverName
        self.caFile = caFile
        self.preamble = preamble
        self.httpPath = httpPath
    }
}
