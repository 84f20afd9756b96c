import Glibc
import NIOCore
import TailgateConfig

/// The addresses the upstream servers written as names resolved to, by name and port.
///
/// Resolved when a configuration is loaded and again every `resolve_interval` (every 2 s while a name has
/// not resolved yet). A lookup that fails keeps the address the name had (HAProxy's `init-addr last`); a
/// name that never resolved has none, and its server is down until it does. One address per server, the
/// first getaddrinfo gives, as at load time before.
struct ResolvedNames: Sendable, Equatable {
    struct Name: Sendable, Hashable, CustomStringConvertible {
        let host: String
        let port: Int
        var description: String { "\(host):\(port)" }
    }

    private(set) var addresses: [Name: SocketAddress] = [:]
    /// Why the last lookup of a name failed (whether or not an address from before is kept).
    private(set) var failures: [Name: String] = [:]

    init() {}

    subscript(name: Name) -> SocketAddress? { addresses[name] }

    /// The names written in `configuration`'s upstreams, in a stable order.
    static func names(in configuration: TailgateConfiguration) -> [Name] {
        var names: Set<Name> = []
        for upstream in configuration.upstreams.values {
            for server in upstream.allServers {
                if case .hostname(let host, let port) = server.value { names.insert(Name(host: host, port: port)) }
            }
        }
        return names.sorted { ($0.host, $0.port) < ($1.host, $1.port) }
    }

    /// Looks up every name of `configuration` (blocking getaddrinfo, one name after another), starting from
    /// what `previous` knew: a failed lookup keeps the address from before. Names no longer written are
    /// forgotten.
    static func resolve(_ configuration: TailgateConfiguration, previous: ResolvedNames) -> ResolvedNames {
        var result = ResolvedNames()
        for name in names(in: configuration) {
            do {
                result.addresses[name] = try SocketAddress.makeAddressResolvingHost(name.host, port: name.port)
            } catch {
                result.failures[name] = describe(error)
                result.addresses[name] = previous.addresses[name]
            }
        }
        return result
    }

    /// The names that have no address (never resolved).
    var unresolved: [Name] {
        failures.keys.filter { addresses[$0] == nil }.sorted { ($0.host, $0.port) < ($1.host, $1.port) }
    }

    /// getaddrinfo's reason, without NIO's type name and the port the caller already shows.
    static func describe(_ error: any Error) -> String {
        guard let unknown = error as? SocketAddressError.UnknownHost else { return "\(error)" }
        return unknown.errorDescription
    }
}
