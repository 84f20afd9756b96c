import NIOCore
import TailgateTOML

/// Turns the text of a config file into a validated `TailgateConfiguration`, or every error in it.
public enum ConfigurationLoader {
    static let topLevelKeys = ["global", "lists", "listeners", "upstreams", "log", "firewall", "bans", "health"]
    static let listenerKeys = [
        "bind", "protocol", "routes", "default", "client_hello_timeout", "request_timeout", "max_connections", "proxy_protocol_from", "allow",
        "deny", "redirect", "max_connections_per_source", "connection_rate_per_source", "source_prefix_ipv4", "source_prefix_ipv6", "ban",
    ]
    static let upstreamKeys = [
        "servers", "backup", "send_proxy", "connect_timeout", "idle_timeout", "fail_timeout", "check", "check_interval", "check_timeout", "check_sni", "check_ca", "check_path", "rise", "fall",
    ]

    /// Parses and validates; `file` is used in error locations only (this module does no I/O). List files
    /// (`[lists] NAME = { file = … }`) are read through `readListFile`; without it they are an error.
    public static func load(bytes: [UInt8], file: String, readListFile: ListFileReader? = nil) throws(ConfigurationErrors) -> TailgateConfiguration {
        let document: TOMLTable
        do {
            document = try TOMLParser.parse(bytes: bytes)
        } catch {
            throw ConfigurationErrors([ConfigurationError(file: file, position: error.position, keyPath: "", message: error.message)])
        }
        let errors = ErrorCollector(file: file)
        var configuration = read(document, errors: errors, readListFile: readListFile)
        if !errors.errors.isEmpty { throw ConfigurationErrors(errors.errors) }
        configuration.warnings = ConfigurationErrors(errors.warnings).errors
        return configuration
    }

    /// The first `[health] listen` address of a file that may have errors elsewhere (`tailgate status` needs
    /// only that, also while the file is being edited); nil when it has none or the file is not TOML.
    public static func healthAddress(bytes: [UInt8]) -> SocketAddress? {
        guard let document = try? TOMLParser.parse(bytes: bytes), let listen = document["health"]?.table?["listen"] else { return nil }
        let scratch = ErrorCollector(file: "")
        guard let first = listen.array?.first ?? (listen.array == nil ? listen : nil),
              let endpoint = parseEndpoint(first, path: "health.listen", errors: scratch, allowHostname: false),
              case .address(let address) = endpoint.value else { return nil }
        return address
    }

    /// Convenience for tests and `check`.
    public static func load(text: String, file: String) throws(ConfigurationErrors) -> TailgateConfiguration {
        try load(bytes: Array(text.utf8), file: file)
    }

    private static func read(_ document: TOMLTable, errors: ErrorCollector, readListFile: ListFileReader?) -> TailgateConfiguration {
        var root = TableReader(document, path: "", errors: errors)
        let lists = root.table("lists").map { readLists($0.value, errors: errors, readFile: readListFile) } ?? NamedLists()
        var drainTimeout = ConfigurationDefaults.drainTimeout
        var relay = RelayMode.splice
        var acceptSpread = AcceptSpreadMode.load
        var maxConnections: Int?
        var resolveInterval = ConfigurationDefaults.resolveInterval
        if let global = root.table("global") {
            var reader = TableReader(global.value, path: "global", errors: errors)
            drainTimeout = reader.duration("drain_timeout") ?? drainTimeout
            if let removed = reader.value("relay"), removed.string == RelayMode.removedCopy {
                // Still read, so that an upgrade does not refuse a file that used to be valid.
                errors.warn("relay = \"copy\" was removed; connections are relayed with splice(2) (\"splice\"); remove the key",
                            at: removed.position, path: "global.relay")
            } else {
                relay = reader.choice("relay", RelayMode.self) ?? relay
            }
            acceptSpread = reader.choice("accept_spread", AcceptSpreadMode.self) ?? acceptSpread
            maxConnections = reader.integer("max_connections", in: 1...10_000_000)?.value
            resolveInterval = reader.duration("resolve_interval", minimum: .seconds(1)) ?? resolveInterval
            reader.reportUnknownKeys(expected: ["drain_timeout", "relay", "accept_spread", "max_connections", "resolve_interval"])
        }
        var log = LogConfiguration()
        if let table = root.table("log") {
            var reader = TableReader(table.value, path: "log", errors: errors)
            log.format = reader.choice("format", LogConfiguration.Format.self) ?? log.format
            log.level = reader.choice("level", LogConfiguration.Level.self) ?? log.level
            log.bufferBytes = reader.byteSize("buffer", in: (64 << 10)...(1 << 30)) ?? log.bufferBytes
            reader.reportUnknownKeys(expected: ["format", "level", "buffer"])
        }
        var health: HealthConfiguration?
        if let table = root.table("health") {
            var reader = TableReader(table.value, path: "health", errors: errors)
            var listen: [Located<SocketAddress>] = []
            if let raw = reader.value("listen") {
                let values = raw.array ?? [raw]
                for (index, value) in values.enumerated() {
                    let path = raw.array == nil ? "health.listen" : "health.listen[\(index)]"
                    if let endpoint = parseEndpoint(value, path: path, errors: errors, allowHostname: false),
                       case .address(let address) = endpoint.value {
                        listen.append(Located(address, at: endpoint.position))
                    }
                }
            } else {
                errors.add("missing 'listen': the address of the health endpoint, e.g. \"127.0.0.1:9180\"", at: table.position, path: "health")
            }
            reader.reportUnknownKeys(expected: ["listen"])
            health = HealthConfiguration(listen: listen)
        }
        var firewall: FirewallConfiguration?
        if let table = root.table("firewall") {
            firewall = readFirewall(table.value, errors: errors)
        }
        var bans = BanConfiguration()
        if let table = root.table("bans") {
            bans = readBans(table.value, lists: lists, errors: errors)
        }
        var upstreams: [String: UpstreamConfiguration] = [:]
        if let table = root.table("upstreams") {
            for entry in table.value.entries {
                guard let body = entry.value.table else {
                    errors.add("expected a table [upstreams.\(entry.key)], found \(entry.value.typeName)", at: entry.keyPosition, path: "upstreams.\(entry.key)")
                    continue
                }
                upstreams[entry.key] = readUpstream(entry.key, body, errors: errors)
            }
        }
        var listeners: [ListenerConfiguration] = []
        if let table = root.table("listeners") {
            for entry in table.value.entries {
                guard let body = entry.value.table else {
                    errors.add("expected a table [listeners.\(entry.key)], found \(entry.value.typeName)", at: entry.keyPosition, path: "listeners.\(entry.key)")
                    continue
                }
                if let listener = readListener(entry.key, body, upstreams: upstreams, lists: lists, errors: errors) {
                    listeners.append(listener)
                }
            }
            if table.value.entries.isEmpty, firewall == nil {
                errors.add("no listeners defined; add a [listeners.NAME] table with a bind", at: table.position, path: "listeners")
            }
        } else if firewall == nil, document["listeners"] == nil {
            // (A `listeners` of the wrong type, such as [[listeners]], has its own error.)
            errors.add("nothing to do: add a [listeners.NAME] table with a bind, or a [firewall] table", at: document.position, path: "listeners")
        }
        for listener in listeners where listener.banRule != nil && !bans.enabled {
            if let position = document["listeners"]?.table?[listener.name]?.table?["ban"]?.position {
                errors.warn("this ban rule bans nobody: [bans] is not enabled (enabled = true)", at: position, path: "listeners.\(listener.name).ban")
            }
        }
        root.reportUnknownKeys(expected: topLevelKeys)
        checkBindConflicts(listeners, health: health, errors: errors)
        applyCheckServerNames(&upstreams, listeners: listeners, document: document, errors: errors)
        var configuration = TailgateConfiguration(
            listeners: listeners, upstreams: upstreams, log: log, drainTimeout: drainTimeout, relay: relay, acceptSpread: acceptSpread, maxConnections: maxConnections, resolveInterval: resolveInterval, firewall: firewall, health: health
        )
        configuration.bans = bans
        return configuration
    }

    private static func readUpstream(_ name: String, _ table: TOMLTable, errors: ErrorCollector) -> UpstreamConfiguration {
        var reader = TableReader(table, path: "upstreams.\(name)", errors: errors)
        let servers = reader.array("servers", of: "\"address:port\" strings") { value, path -> Located<Endpoint>? in
            parseEndpoint(value, path: path, errors: errors, allowHostname: true)
        }
        if servers == nil, reader.table["servers"] == nil {
            errors.add("missing 'servers': list at least one \"address:port\"", at: table.position, path: "upstreams.\(name)")
        } else if reader.table["servers"]?.array?.isEmpty == true, let position = reader.table["servers"]?.position {
            errors.add("'servers' is empty; list at least one \"address:port\"", at: position, path: reader.keyPath("servers"))
        }
        var upstream = UpstreamConfiguration(
            name: name,
            servers: servers ?? [],
            sendProxy: reader.choice("send_proxy", ProxyProtocolMode.self) ?? .none,
            connectTimeout: reader.duration("connect_timeout") ?? ConfigurationDefaults.connectTimeout,
            idleTimeout: reader.duration("idle_timeout") ?? ConfigurationDefaults.idleTimeout,
            check: readCheck(&reader, errors: errors)
        )
        upstream.failTimeout = reader.duration("fail_timeout", minimum: .zero) ?? upstream.failTimeout
        upstream.backup = reader.array("backup", of: "\"address:port\" strings") { value, path -> Located<Endpoint>? in
            parseEndpoint(value, path: path, errors: errors, allowHostname: true)
        } ?? []
        for (index, server) in upstream.backup.enumerated() where upstream.servers.contains(where: { $0.value == server.value }) {
            errors.add("\(server.value) is already in 'servers'; a server is either a backup or not", at: server.position, path: reader.keyPath("backup") + "[\(index)]")
        }
        reader.reportUnknownKeys(expected: upstreamKeys)
        return upstream
    }

    /// The hostname and upstream an unquoted dotted key spelled (`a.b.c = "u"` read as nested tables), if it was one.
    private static func dottedName(_ key: String, _ value: TOMLValue) -> (name: String, upstream: String)? {
        guard let table = value.table, table.entries.count == 1, let entry = table.entries.first else { return nil }
        if let upstream = entry.value.string { return ("\(key).\(entry.key)", upstream) }
        return dottedName("\(key).\(entry.key)", entry.value)
    }

    private static func readListener(
        _ name: String, _ table: TOMLTable, upstreams: [String: UpstreamConfiguration], lists: NamedLists, errors: ErrorCollector
    ) -> ListenerConfiguration? {
        var reader = TableReader(table, path: "listeners.\(name)", errors: errors)
        let binds = reader.array("bind", of: "\"address:port\" strings") { value, path -> Located<SocketAddress>? in
            guard let endpoint = parseEndpoint(value, path: path, errors: errors, allowHostname: false),
                  case .address(let address) = endpoint.value else { return nil }
            return Located(address, at: endpoint.position)
        }
        if binds == nil, reader.table["bind"] == nil {
            errors.add("missing 'bind': the addresses to listen on, e.g. [\"0.0.0.0:443\"]", at: table.position, path: reader.path)
        }
        func checkUpstream(_ upstream: Located<String>, _ path: String) -> String? {
            guard upstreams[upstream.value] != nil else {
                let names = upstreams.keys.sorted()
                let hint: String
                if let near = names.first(where: { TableReader.isNearMiss(upstream.value, $0) }) {
                    hint = "; did you mean \"\(near)\"?"
                } else {
                    hint = names.isEmpty ? "; no [upstreams] are defined" : " (defined: \(names.joined(separator: ", ")))"
                }
                errors.add("unknown upstream \"\(upstream.value)\"\(hint)", at: upstream.position, path: path)
                return nil
            }
            return upstream.value
        }
        let listenerProtocol = reader.choice("protocol", ListenerProtocol.self) ?? .tls
        let defaultUpstream = reader.string("default").flatMap { checkUpstream($0, reader.keyPath("default")) }
        if listenerProtocol == .tcp {
            if let routeTable = reader.table["routes"] {
                errors.add("a tcp listener has no server name to route by: every connection goes to 'default'; remove 'routes' (or use protocol = \"tls\")",
                           at: routeTable.position, path: reader.keyPath("routes"))
            }
            if reader.table["default"] == nil {
                errors.add("a tcp listener needs 'default': the upstream every connection goes to", at: table.position, path: reader.path)
            }
        }
        var routes: [(pattern: HostnamePattern, upstream: String)] = []
        var routeAccess: [String: AccessRule] = [:]
        var routePositions: [String: SourcePosition] = [:]
        var redirects: Set<String> = []
        if let routeTable = reader.table("routes") {
            var seen: [HostnamePattern: SourcePosition] = [:]
            for entry in routeTable.value.entries {
                let path = "\(reader.keyPath("routes")).\"\(entry.key)\""
                let pattern: HostnamePattern
                do {
                    pattern = try HostnamePattern.parse(entry.key)
                } catch {
                    let message: String
                    switch error {
                    case .empty: message = "empty hostname"
                    case .badWildcard: message = "invalid wildcard \"\(entry.key)\"; only a leading \"*.\" is allowed, e.g. \"*.example.com\""
                    case .badName: message = "invalid hostname \"\(entry.key)\""
                    }
                    errors.add(message, at: entry.keyPosition, path: path)
                    continue
                }
                if let first = seen[pattern] {
                    errors.add("route \"\(pattern)\" is defined twice (first at \(first))", at: entry.keyPosition, path: path)
                    continue
                }
                seen[pattern] = entry.keyPosition
                if case .exact(let name) = pattern, IPAddress(name) != nil {
                    errors.warn("clients never send an IP address as SNI (RFC 6066), so this route never matches", at: entry.keyPosition, path: path)
                }
                routePositions[pattern.description] = entry.keyPosition
                if let body = entry.value.table, ["upstream", "allow", "deny", "redirect"].contains(where: { body[$0] != nil }) {
                    // { upstream = "ops", allow = ["@admins"], deny = [...], redirect = "https" }
                    var routeReader = TableReader(body, path: path, errors: errors)
                    let target = routeReader.string("upstream")
                    if readRedirect(&routeReader, listenerProtocol, errors: errors) { redirects.insert(pattern.description) }
                    if target == nil, body["upstream"] == nil, body["redirect"] == nil {
                        errors.add("missing 'upstream': where the route's connections go", at: entry.value.position, path: path)
                    }
                    let allow = readAccessEntries(&routeReader, "allow", lists: lists, errors: errors)
                    let deny = readAccessEntries(&routeReader, "deny", lists: lists, errors: errors) ?? []
                    routeReader.reportUnknownKeys(expected: ["upstream", "allow", "deny", "redirect"])
                    if allow != nil || !deny.isEmpty {
                        routeAccess[pattern.description] = AccessRule(scope: "route \(pattern)", allow: allow, deny: deny)
                    }
                    if let target, let upstream = checkUpstream(target, "\(path).upstream") {
                        routes.append((pattern, upstream))
                    }
                    continue
                }
                guard let target = entry.value.string else {
                    // ops.example.com = "u" is TOML for three nested tables: say how to write the name.
                    let expected = "an upstream name (a string)"
                    if let dotted = dottedName(entry.key, entry.value) {
                        errors.add("expected \(expected), found \(entry.value.typeName); quote a hostname key: \"\(dotted.name)\" = \"\(dotted.upstream)\"",
                                   at: entry.value.position, path: path)
                    } else {
                        errors.add("expected \(expected) or { upstream = \"…\", allow = […] }, found \(entry.value.typeName)", at: entry.value.position, path: path)
                    }
                    continue
                }
                if let upstream = checkUpstream(Located(target, at: entry.value.position), path) {
                    routes.append((pattern, upstream))
                }
            }
        }
        if listenerProtocol != .tcp, reader.table["routes"] == nil, reader.table["default"] == nil, reader.table["redirect"] == nil {
            errors.add("listener has neither 'routes' nor 'default'; every connection would be closed", at: table.position, path: reader.path)
        }
        let proxyFrom = reader.array("proxy_protocol_from", of: "address prefixes like \"100.64.0.0/10\"") { value, path -> IPNetwork? in
            parseNetwork(value, path: path, errors: errors)
        }
        let allow = readAccessEntries(&reader, "allow", lists: lists, errors: errors)
        let deny = readAccessEntries(&reader, "deny", lists: lists, errors: errors) ?? []
        var listener = ListenerConfiguration(
            name: name,
            listenerProtocol: listenerProtocol,
            binds: binds ?? [],
            routes: RouteTable(routes: routes.map { ($0.pattern, $0.upstream) }, defaultUpstream: defaultUpstream),
            routeList: routes,
            clientHelloTimeout: readAdmissionTimeout(&reader, listenerProtocol, errors: errors),
            maxConnections: reader.integer("max_connections", in: 1...1_000_000)?.value ?? ConfigurationDefaults.maxConnections,
            proxyProtocolFrom: proxyFrom ?? []
        )
        listener.access = AccessRule(scope: "listener", allow: allow, deny: deny)
        listener.sourceLimits = readSourceLimits(&reader, errors: errors)
        listener.banRule = readBanRule(&reader, errors: errors)
        if let perSource = listener.sourceLimits.maxConnections, perSource >= listener.maxConnections,
           let position = reader.table["max_connections_per_source"]?.position {
            errors.warn("max_connections_per_source \(perSource) is not below the listener's max_connections \(listener.maxConnections): one source can still take every slot",
                        at: position, path: reader.keyPath("max_connections_per_source"))
        }
        if readRedirect(&reader, listenerProtocol, errors: errors) {
            // The whole listener: every route, and connections without one (the default's upstream takes ACME).
            redirects.formUnion(routes.map(\.pattern.description) + ["default", "none"])
        }
        listener.redirectsToHTTPS = redirects
        listener.routeAccess = routeAccess
        warnAboutAccess(listener, positions: routePositions, listenerPosition: table.position, errors: errors)
        reader.reportUnknownKeys(expected: listenerKeys)
        return listener
    }
}
