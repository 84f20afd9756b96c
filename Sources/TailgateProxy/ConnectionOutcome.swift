/// How a connection ended; the raw value appears in the connection log and in counters.
public enum ConnectionOutcome: String, Sendable, CaseIterable {
    /// Both sides finished normally.
    case closed
    /// The listener was at max_connections.
    case overLimit = "over_limit"
    /// The client's source was over `max_connections_per_source` or `connection_rate_per_source`; the reason
    /// says which (`connections`, `rate`).
    case overSourceLimit = "over_source_limit"
    /// No whole ClientHello within client_hello_timeout.
    case clientHelloTimeout = "client_hello_timeout"
    /// The first bytes were not a usable ClientHello; the sniffer's reason is logged alongside.
    case badClientHello = "bad_client_hello"
    /// A trusted peer sent no valid PROXY header.
    case badProxyHeader = "bad_proxy_header"
    /// The client closed before it was routed.
    case clientClosedEarly = "client_closed_early"
    /// No route matched and the listener has no default.
    case noRoute = "no_route"
    /// The client's address is refused by the listener's or the route's allow/deny lists.
    case denied
    /// A client behind a trusted PROXY hop is banned (the kernel drops banned sources that connect directly).
    case banned
    /// An http listener answered with a redirect to https (not an error).
    case redirected
    /// An http listener answered 400 or 431: no usable request head; the reason says why.
    case badRequest = "bad_request"
    /// An http listener answered 408: no whole request head within request_timeout.
    case requestTimeout = "request_timeout"
    /// Every server of the upstream refused or timed out.
    case upstreamUnavailable = "upstream_unavailable"
    /// Nothing moved for idle_timeout.
    case idleTimeout = "idle_timeout"
    /// The client or the server reset the connection (or vanished while we wrote); the reason says which.
    case reset
    /// Any other socket error on either side.
    case error
    /// Cut by shutdown after drain_timeout.
    case drainTimeout = "drain_timeout"
}
