import NIOCore
import TailgateConfig

/// What a listener does with a new connection: an immutable snapshot of one loaded configuration.
///
/// A connection reads its listener's policy once, at accept; a reload publishes a new policy. A class: the
/// policy is passed along with every connection, and one reference is cheaper to hand on than its fields.
public final class ListenerPolicy: Sendable {
    public let name: String
    public let routes: RouteTable
    public let upstreams: [String: UpstreamPool]
    public let clientHelloTimeout: TimeAmount
    public let maxConnections: Int
    /// `protocol = "tcp"`: nothing is read but a trusted PROXY header; every connection goes to `default`.
    public let isPlainTCP: Bool
    /// `protocol = "http"`: the request head is read and its Host routes.
    public let isHTTP: Bool
    /// Route labels (and `default`) answered with a redirect to https, ACME challenges excepted.
    let redirectsToHTTPS: Set<String>
    /// Peers that must send a PROXY header; nobody else may.
    public let trustedProxies: [IPNetwork]
    /// The configuration generation this policy came from (for logs).
    public let generation: Int
    /// The listener's allow/deny; nil when open (the usual case costs one check).
    let access: AccessRule?
    /// Routes' own allow/deny, by route label as the log shows it (`ops.example.com`, `*.example.com`).
    let routeAccess: [String: AccessRule]
    /// Limits per client source (`max_connections_per_source`, `connection_rate_per_source`).
    public let sourceLimits: SourceLimits
    /// Offenses that ban a source (`ban`).
    public let banRule: BanRule?

    public init(configuration: ListenerConfiguration, upstreams: [String: UpstreamPool], generation: Int) {
        self.name = configuration.name
        self.routes = configuration.routes
        self.upstreams = upstreams
        self.clientHelloTimeout = .milliseconds(configuration.clientHelloTimeout.wholeMilliseconds)
        self.maxConnections = configuration.maxConnections
        self.isPlainTCP = configuration.listenerProtocol == .tcp
        self.isHTTP = configuration.listenerProtocol == .http
        self.redirectsToHTTPS = configuration.redirectsToHTTPS
        self.trustedProxies = configuration.proxyProtocolFrom
        self.generation = generation
        self.access = configuration.access.isOpen ? nil : configuration.access
        self.routeAccess = configuration.routeAccess
        self.sourceLimits = configuration.sourceLimits
        self.banRule = configuration.banRule
    }

    /// Why the client at `client` may not use `route` (a route label); nil when it may. Without lists (the
    /// usual listener) this is one check per connection, and the address is not even converted.
    func refusal(_ client: SocketAddress?, route: String?) -> String? {
        guard access != nil || !routeAccess.isEmpty else { return nil }
        let routeRule = route.flatMap { routeAccess[$0] }
        guard access != nil || routeRule != nil else { return nil }
        guard let address = client.flatMap(IPAddress.init) else { return "no client address" }
        return access?.refusal(address) ?? routeRule?.refusal(address)
    }

    /// Whether `peer` is a trusted PROXY protocol sender.
    func trusts(_ peer: SocketAddress?) -> Bool {
        guard !trustedProxies.isEmpty, let peer, let address = IPAddress(peer) else { return false }
        return trustedProxies.contains { $0.contains(address) }
    }
}
