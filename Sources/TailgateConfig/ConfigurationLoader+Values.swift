import NIOCore
import TailgateTOML

extension ConfigurationLoader {
    static func parseEndpoint(_ value: TOMLValue, path: String, errors: ErrorCollector, allowHostname: Bool) -> Located<Endpoint>? {
        guard let text = value.string else {
            errors.add("expected an \"address:port\" string, found \(value.typeName)", at: value.position, path: path)
            return nil
        }
        do {
            let endpoint = try Endpoint.parse(text)
            if case .hostname = endpoint, !allowHostname {
                errors.add("\"\(text)\" is not an IP address; listeners bind to addresses such as \"0.0.0.0:443\" or \"[::]:443\"", at: value.position, path: path)
                return nil
            }
            return Located(endpoint, at: value.position)
        } catch {
            let message: String
            switch error {
            case .missingPort: message = "\"\(text)\" has no port; write \"address:port\""
            case .badPort: message = "\"\(text)\" has an invalid port; ports are 1–65535"
            case .unbracketedIPv6: message = "\"\(text)\": put IPv6 addresses in brackets, e.g. \"[::1]:443\""
            case .badAddress: message = "\"\(text)\" is not a valid IP address"
            case .badHostname: message = "\"\(text)\" is not a valid hostname"
            }
            errors.add(message, at: value.position, path: path)
            return nil
        }
    }

    static func parseNetwork(_ value: TOMLValue, path: String, errors: ErrorCollector) -> IPNetwork? {
        guard let text = value.string else {
            errors.add("expected an address prefix string like \"100.64.0.0/10\", found \(value.typeName)", at: value.position, path: path)
            return nil
        }
        do {
            return try IPNetwork.parse(text)
        } catch {
            let message: String
            switch error {
            case .badAddress: message = "\"\(text)\" is not a valid address or prefix (e.g. \"100.64.0.0/10\", \"fd7a:115c:a1e0::/48\")"
            case .badPrefixLength(let max): message = "\"\(text)\" has an invalid prefix length (0–\(max))"
            case .hostBitsSet(let suggestion): message = "\"\(text)\" has bits set beyond the prefix length; did you mean \"\(suggestion)\"?"
            }
            errors.add(message, at: value.position, path: path)
            return nil
        }
    }

    /// Refuses a bind used twice, and a specific address that a wildcard bind on the same port already covers,
    /// among the listeners' binds and the health endpoint's addresses (which `run` binds as well).
    static func checkBindConflicts(_ listeners: [ListenerConfiguration], health: HealthConfiguration?, errors: ErrorCollector) {
        var entries: [(address: Located<SocketAddress>, owner: String, path: String)] = []
        for listener in listeners {
            for bind in listener.binds { entries.append((bind, "listener '\(listener.name)'", "listeners.\(listener.name).bind")) }
        }
        for address in health?.listen ?? [] { entries.append((address, "[health]", "health.listen")) }
        // By port: only binds on the same port can conflict (a config with thousands of binds stays linear).
        var seen: [Int: [(address: SocketAddress, owner: String, position: SourcePosition)]] = [:]
        for (bind, owner, path) in entries {
            let port = bind.value.port ?? 0
            for earlier in seen[port, default: []] {
                if earlier.address == bind.value {
                    errors.add("\(bind.value.endpointDescription) is bound twice (first by \(earlier.owner) at \(earlier.position))", at: bind.position, path: path)
                    break
                } else if sameFamily(earlier.address, bind.value), isWildcard(earlier.address) || isWildcard(bind.value) {
                    errors.add("\(bind.value.endpointDescription) overlaps \(earlier.address.endpointDescription) of \(earlier.owner) (at \(earlier.position)); a wildcard address already covers every address on that port", at: bind.position, path: path)
                    break
                }
            }
            seen[port, default: []].append((bind.value, owner, bind.position))
        }
    }

    private static func sameFamily(_ lhs: SocketAddress, _ rhs: SocketAddress) -> Bool {
        lhs.protocol == rhs.protocol
    }

    private static func isWildcard(_ address: SocketAddress) -> Bool {
        address.ipAddress == "0.0.0.0" || address.ipAddress == "::"
    }
}
