/// SNI routing for one listener: exact names first, then the longest matching wildcard suffix, then the default.
public struct RouteTable: Sendable {
    private var exact: [String: String]
    /// (suffix with leading dot, upstream), longest suffix first.
    private var wildcards: [(suffix: String, upstream: String)]
    /// Where connections go when no name matched or none was sent; nil closes them.
    public let defaultUpstream: String?

    /// Builds the table; later duplicates of a pattern replace earlier ones (the loader refuses duplicates).
    public init(routes: [(HostnamePattern, String)], defaultUpstream: String?) {
        var exact: [String: String] = [:]
        var wildcards: [(suffix: String, upstream: String)] = []
        for (pattern, upstream) in routes {
            switch pattern {
            case .exact(let name): exact[name] = upstream
            case .wildcard(let suffix): wildcards.append((suffix, upstream))
            }
        }
        self.exact = exact
        self.wildcards = wildcards.sorted { $0.suffix.utf8.count > $1.suffix.utf8.count }
        self.defaultUpstream = defaultUpstream
    }

    /// A route decision and why it was taken.
    public enum Match: Sendable, Equatable {
        case exact(upstream: String)
        case wildcard(pattern: String, upstream: String)
        case fallback(upstream: String)
        case none

        public var upstream: String? {
            switch self {
            case .exact(let upstream), .wildcard(_, let upstream), .fallback(let upstream): return upstream
            case .none: return nil
            }
        }
    }

    /// Routes a server name (already normalized by the sniffer; normalized again here to be safe).
    public func route(serverName: String?) -> Match {
        guard let raw = serverName, !raw.isEmpty else {
            return defaultUpstream.map(Match.fallback) ?? .none
        }
        let name = HostnamePattern.normalize(raw)
        if let upstream = exact[name] { return .exact(upstream: upstream) }
        for wildcard in wildcards where name.utf8.count > wildcard.suffix.utf8.count && name.hasSuffix(wildcard.suffix) {
            return .wildcard(pattern: "*" + wildcard.suffix, upstream: wildcard.upstream)
        }
        return defaultUpstream.map(Match.fallback) ?? .none
    }

    /// Number of routes (exact and wildcard).
    public var count: Int { exact.count + wildcards.count }
}
