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
        switch IPNetwork.parsing(text) {
        case .success(let network):
            return network
        case .failure(let message):
            errors.add(message.text, at: value.position, path: path)
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
        // Only binds on the same port and address family can conflict: an identical address, or any other
        // address where one of the two is the wildcard. Looked up by key, so thousands of binds stay linear.
        typealias Entry = (address: SocketAddress, owner: String, position: SourcePosition)
        struct Slot: Hashable {
            var port: Int
            var family: Int32
        }
        var exact: [SocketAddress: Entry] = [:]
        var firstOnSlot: [Slot: Entry] = [:]
        var wildcardOnSlot: [Slot: Entry] = [:]
        for (bind, owner, path) in entries {
            let slot = Slot(port: bind.value.port ?? 0, family: bind.value.protocol.rawValue)
            let wildcard = isWildcard(bind.value)
            if let earlier = exact[bind.value] {
                errors.add("\(bind.value.endpointDescription) is bound twice (first by \(earlier.owner) at \(earlier.position))", at: bind.position, path: path)
            } else if let earlier = wildcard ? firstOnSlot[slot] : wildcardOnSlot[slot] {
                errors.add("\(bind.value.endpointDescription) overlaps \(earlier.address.endpointDescription) of \(earlier.owner) (at \(earlier.position)); a wildcard address already covers every address on that port", at: bind.position, path: path)
            }
            let entry: Entry = (bind.value, owner, bind.position)
            if exact[bind.value] == nil { exact[bind.value] = entry }
            if firstOnSlot[slot] == nil { firstOnSlot[slot] = entry }
            if wildcard, wildcardOnSlot[slot] == nil { wildcardOnSlot[slot] = entry }
        }
    }

    private static func isWildcard(_ address: SocketAddress) -> Bool {
        address.ipAddress == "0.0.0.0" || address.ipAddress == "::"
    }
}
