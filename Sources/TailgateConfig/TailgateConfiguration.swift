import NIOCore
import TailgateTOML

/// A validated configuration: an immutable snapshot of one config file.
public struct TailgateConfiguration: Sendable {
    /// Listeners in file order.
    public var listeners: [ListenerConfiguration]
    /// Upstreams by name.
    public var upstreams: [String: UpstreamConfiguration]
    public var log: LogConfiguration
    /// How long connections may take to finish on shutdown or when their listener is removed.
    public var drainTimeout: Duration
    /// How admitted connections are relayed (`[global] relay`).
    public var relay: RelayMode = .splice
    /// Which relay threads accept new connections (`[global] accept_spread`).
    public var acceptSpread: AcceptSpreadMode = .load
    /// `[global] max_connections`: open client connections over all listeners; nil = derived from the
    /// open-file limit at start.
    public var maxConnections: Int? = nil
    /// `[global] resolve_interval`: how often upstream server names are resolved again, so that a changed
    /// address is followed without a reload (a name that has not resolved yet is tried every 2 s).
    public var resolveInterval: Duration = ConfigurationDefaults.resolveInterval
    /// The `[firewall]` table; nil when absent (tailgate then leaves nftables alone).
    public var firewall: FirewallConfiguration?
    /// The `[bans]` table (disabled when absent).
    public var bans = BanConfiguration()
    /// The `[health]` table; nil when absent (no HTTP endpoint).
    public var health: HealthConfiguration?
    /// What the file says that is valid but probably not meant, in file order; `check` prints these and the
    /// agent logs them, without refusing the file.
    public var warnings: [ConfigurationError] = []
}

/// How bytes move between client and server once a connection is routed.
public enum RelayMode: String, Sendable, CaseIterable {
    /// splice(2) through a kernel pipe: the bytes never enter the agent's memory.
    case splice

    /// The value older versions also took; it now reads as `splice`, with a warning.
    static let removedCopy = "copy"
}

/// Which relay threads accept new connections (a connection stays on the thread that accepted it).
public enum AcceptSpreadMode: String, Sendable, CaseIterable {
    /// One thread, and more only while the accepting ones are busy or waiting for a CPU (see `AcceptSpread`).
    case load
    /// Every relay thread, as nginx's workers and HAProxy's threads do.
    case all
}

/// What a listener expects from its clients (`protocol`).
public enum ListenerProtocol: String, Sendable, CaseIterable {
    /// TLS: the ClientHello is read (never terminated) and its SNI chooses the route.
    case tls
    /// Any TCP stream (SSH, MQTT, a game server): nothing is read; every connection goes to `default`, at
    /// once (a protocol whose server speaks first, as SSH's, must not wait for the client).
    case tcp
    /// HTTP/1.x: the request head is read (never changed) and its Host chooses the route; a route may answer
    /// with a redirect to https instead (`redirect = "https"`), except for ACME HTTP-01 challenges.
    case http
}

/// One `[listeners.NAME]` table.
public struct ListenerConfiguration: Sendable {
    public var name: String
    /// `protocol`: what the clients speak, and so what the listener reads before routing.
    public var listenerProtocol: ListenerProtocol = .tls
    public var binds: [Located<SocketAddress>]
    public var routes: RouteTable
    /// Route keys in file order, for display.
    public var routeList: [(pattern: HostnamePattern, upstream: String)]
    public var clientHelloTimeout: Duration
    public var maxConnections: Int
    /// Peers that must send a PROXY header; empty means no peer may.
    public var proxyProtocolFrom: [IPNetwork]
    /// The listener's `allow` and `deny` (open when absent).
    public var access = AccessRule(scope: "listener")
    /// Routes' own `allow` and `deny`, by route pattern as written (`ops.example.com`, `*.example.com`).
    public var routeAccess: [String: AccessRule] = [:]
    /// `protocol = "http"`: routes (by pattern; `default`, and `none` for a Host no route takes) that answer
    /// with a redirect to https, but for `/.well-known/acme-challenge/`, which goes to their upstream.
    public var redirectsToHTTPS: Set<String> = []
    /// Limits per client address (off unless a key sets one).
    public var sourceLimits = SourceLimits()
    /// `ban`: offenses that ban a source in the kernel (off when absent).
    public var banRule: BanRule?
}

/// How to speak PROXY protocol to an upstream.
public enum ProxyProtocolMode: String, Sendable, CaseIterable {
    case none, v1, v2
}

/// One `[upstreams.NAME]` table.
public struct UpstreamConfiguration: Sendable {
    public var name: String
    public var servers: [Located<Endpoint>]
    public var sendProxy: ProxyProtocolMode
    public var connectTimeout: Duration
    public var idleTimeout: Duration
    /// How long new connections skip a server after a connect to it failed (zero: never).
    public var failTimeout: Duration = ConfigurationDefaults.failTimeout
    public var check: UpstreamCheckConfiguration
    /// Servers tried only after every one of `servers` is down, skipped or has failed this connection's
    /// connect (nginx's and HAProxy's `backup`).
    public var backup: [Located<Endpoint>] = []

    /// `servers`, then `backup`: every server the upstream may connect to or check.
    public var allServers: [Located<Endpoint>] { servers + backup }
}

/// The `[log]` table.
public struct LogConfiguration: Sendable {
    public enum Format: String, Sendable, CaseIterable { case text, json }
    public enum Level: String, Sendable, CaseIterable { case debug, info, warning, error }
    public var format: Format = .text
    public var level: Level = .info
    /// Bytes of log lines held while standard error does not keep up (`[log] buffer`); past it, lines are
    /// dropped and counted rather than making a thread that serves wait.
    public var bufferBytes = LogConfiguration.defaultBufferBytes

    /// 4 MiB: a burst of ~16,000 connection lines (a drain cutting 10,000 connections at once) fits.
    public static let defaultBufferBytes = 4 << 20

    public init(format: Format = .text, level: Level = .info) {
        self.format = format
        self.level = level
    }
}

/// A value and where it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    public var position: SourcePosition
    public init(_ value: Value, at position: SourcePosition) {
        self.value = value
        self.position = position
    }
}

extension Located: Equatable where Value: Equatable {}
extension Located: Hashable where Value: Hashable {}

/// Defaults an operator can rely on; documented in docs/config.md.
public enum ConfigurationDefaults {
    public static let clientHelloTimeout: Duration = .seconds(5)
    public static let requestTimeout: Duration = .seconds(10)
    public static let maxConnections = 4_096
    public static let connectTimeout: Duration = .seconds(3)
    public static let idleTimeout: Duration = .seconds(600)
    public static let failTimeout: Duration = .seconds(10)
    public static let drainTimeout: Duration = .seconds(30)
    public static let resolveInterval: Duration = .seconds(30)
}
