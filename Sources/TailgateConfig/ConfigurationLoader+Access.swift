import TailgateTOML

/// Reads a list file named in the configuration (`[lists] NAME = { file = "…" }`): the loader does no I/O,
/// its caller does (relative to the configuration's directory). Returns the bytes and the path to report,
/// or why the file cannot be read.
public typealias ListFileReader = @Sendable (String) -> Result<(bytes: [UInt8], path: String), ListFileError>

/// Why a list file could not be read.
public struct ListFileError: Error, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Named address lists, by name: what `@name` in an allow or deny list stands for.
struct NamedLists {
    var lists: [String: AddressSet] = [:]
}

extension ConfigurationLoader {
    /// `[lists]`: `NAME = ["prefix", …]` or `NAME = { file = "path" }` (one prefix per line, `#` comments).
    static func readLists(_ table: TOMLTable, errors: ErrorCollector, readFile: ListFileReader?) -> NamedLists {
        var named = NamedLists()
        for entry in table.entries {
            let path = "lists.\(entry.key)"
            guard isValidListName(entry.key) else {
                errors.add("invalid list name \"\(entry.key)\"; use letters, digits, '_' and '-'", at: entry.keyPosition, path: path)
                continue
            }
            if let values = entry.value.array {
                var networks: [IPNetwork] = []
                for (index, value) in values.enumerated() {
                    if let network = parseNetwork(value, path: "\(path)[\(index)]", errors: errors) { networks.append(network) }
                }
                named.lists[entry.key] = AddressSet(networks)
            } else if let body = entry.value.table {
                // Declared, if unusable: references to it are not reported again as unknown.
                named.lists[entry.key] = AddressSet()
                var reader = TableReader(body, path: path, errors: errors)
                guard let file = reader.string("file") else {
                    errors.add("expected { file = \"path\" }: a file of prefixes, one per line", at: entry.value.position, path: path)
                    continue
                }
                reader.reportUnknownKeys(expected: ["file"])
                guard let readFile else {
                    errors.add("list files are not read here", at: file.position, path: "\(path).file")
                    continue
                }
                switch readFile(file.value) {
                case .failure(let failure):
                    errors.add("cannot read list file \"\(file.value)\": \(failure.description)", at: file.position, path: "\(path).file")
                case .success(let (bytes, shown)):
                    named.lists[entry.key] = parseListFile(bytes, path: shown, errors: errors)
                }
            } else {
                errors.add("expected an array of prefixes or { file = \"path\" }, found \(entry.value.typeName)", at: entry.value.position, path: path)
            }
        }
        return named
    }

    /// A name `@name` can refer to: letters, digits, '_' and '-', at most 64.
    static func isValidListName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// One prefix per line; `#` starts a comment; blank lines are skipped. Errors name the file's own line.
    static func parseListFile(_ bytes: [UInt8], path: String, errors: ErrorCollector) -> AddressSet {
        var networks: [IPNetwork] = []
        var line = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            line += 1
            let text = String(decoding: raw.prefix { $0 != UInt8(ascii: "#") }, as: UTF8.self)
            let trimmed = text.trimmingASCIIWhitespace()
            guard !trimmed.isEmpty else { continue }
            let column = (text.firstIndex { !$0.isWhitespace }.map { text.distance(from: text.startIndex, to: $0) } ?? 0) + 1
            do {
                networks.append(try IPNetwork.parse(trimmed))
            } catch {
                errors.addElsewhere(file: path, "\"\(trimmed)\" is not a valid address or prefix", at: SourcePosition(line: line, column: column))
            }
        }
        return AddressSet(networks)
    }

    /// An `allow` or `deny` array: prefixes and `@name`s of [lists]. Nil when the key is absent.
    static func readAccessEntries(_ reader: inout TableReader, _ key: String, lists: NamedLists, errors: ErrorCollector) -> [AccessRule.Entry]? {
        reader.array(key, of: "prefixes or \"@list\" names") { value, path -> AccessRule.Entry? in
            guard let text = value.string else {
                errors.add("expected a prefix like \"203.0.113.0/24\" or a list name like \"@admins\", found \(value.typeName)", at: value.position, path: path)
                return nil
            }
            if text.hasPrefix("@") {
                let name = String(text.dropFirst())
                guard let set = lists.lists[name] else {
                    let known = lists.lists.keys.sorted()
                    let hint = known.isEmpty ? "; declare it in [lists]" : " (declared: \(known.map { "@\($0)" }.joined(separator: ", ")))"
                    errors.add("unknown list \"\(text)\"\(hint)", at: value.position, path: path)
                    return nil
                }
                return AccessRule.Entry(written: text, addresses: set)
            }
            guard let network = parseNetwork(value, path: path, errors: errors) else { return nil }
            return AccessRule.Entry(written: network.description, addresses: AddressSet([network]))
        }
    }

    /// Warnings for rules that shut out what the operator surely did not mean to: a deny covering a peer the
    /// listener trusts for PROXY headers (its own connections, health checks with PROXY LOCAL, are judged by
    /// its address), and a route no address can reach past the listener's and the route's rules.
    static func warnAboutAccess(_ listener: ListenerConfiguration, positions: [String: SourcePosition], listenerPosition: SourcePosition, errors: ErrorCollector) {
        let path = "listeners.\(listener.name)"
        let trusted = AddressSet(listener.proxyProtocolFrom)
        let rules = [listener.access] + listener.routeAccess.values.sorted { $0.scope < $1.scope }
        for rule in rules where !trusted.isEmpty {
            if let entry = rule.deny.first(where: { $0.addresses.intersects(trusted) }) {
                errors.warn("deny \(entry.written) (\(rule.scope)) covers a peer this listener trusts for PROXY headers (proxy_protocol_from): its own connections, such as health checks with PROXY LOCAL, are judged by its address and refused",
                            at: listenerPosition, path: path)
            }
        }
        let listenerAdmits = listener.access.admitted
        if listenerAdmits.isEmpty, !listener.access.isOpen {
            errors.warn("the listener's allow and deny lists admit no address: every connection is refused", at: listenerPosition, path: path)
            return
        }
        for (pattern, rule) in listener.routeAccess.sorted(by: { $0.key < $1.key }) where !rule.isOpen {
            if rule.admitted.intersection(listenerAdmits).isEmpty {
                errors.warn("route \"\(pattern)\" is unreachable: no address passes both the listener's and the route's allow and deny lists",
                            at: positions[pattern] ?? listenerPosition, path: "\(path).routes.\"\(pattern)\"")
            }
        }
    }
}

extension ConfigurationLoader {
    /// `redirect = "https"` (http listeners only): true when set.
    static func readRedirect(_ reader: inout TableReader, _ listenerProtocol: ListenerProtocol, errors: ErrorCollector) -> Bool {
        guard let value = reader.string("redirect") else { return false }
        guard value.value == "https" else {
            errors.add("unknown value \"\(value.value)\"; expected \"https\"", at: value.position, path: reader.keyPath("redirect"))
            return false
        }
        guard listenerProtocol == .http else {
            errors.add("a redirect needs protocol = \"http\" (a TLS or TCP client cannot be answered with one)", at: value.position, path: reader.keyPath("redirect"))
            return false
        }
        return true
    }

    /// `max_connections_per_source`, `connection_rate_per_source` and the prefixes that name a source.
    static func readSourceLimits(_ reader: inout TableReader, errors: ErrorCollector) -> SourceLimits {
        var limits = SourceLimits()
        limits.maxConnections = reader.integer("max_connections_per_source", in: 1...1_000_000)?.value
        if let text = reader.string("connection_rate_per_source") {
            switch SourceLimits.parseRate(text.value) {
            case .success(let rate): limits.rate = rate
            case .failure(let error): errors.add("invalid rate \"\(text.value)\": \(error.message)", at: text.position, path: reader.keyPath("connection_rate_per_source"))
            }
        }
        limits.ipv4Prefix = reader.integer("source_prefix_ipv4", in: 8...32)?.value ?? 32
        limits.ipv6Prefix = reader.integer("source_prefix_ipv6", in: 16...128)?.value ?? 64
        if !limits.isEnabled {
            for key in ["source_prefix_ipv4", "source_prefix_ipv6"] {
                if let position = reader.table[key]?.position {
                    errors.warn("no per-source limit is set on this listener (max_connections_per_source, connection_rate_per_source), so '\(key)' does nothing",
                                at: position, path: reader.keyPath(key))
                }
            }
        }
        return limits
    }

    /// `client_hello_timeout` (tls, and a tcp listener's PROXY header), or `request_timeout` (http): how long
    /// a client has to send what routing needs.
    static func readAdmissionTimeout(_ reader: inout TableReader, _ listenerProtocol: ListenerProtocol, errors: ErrorCollector) -> Duration {
        let hello = reader.duration("client_hello_timeout"), request = reader.duration("request_timeout")
        if listenerProtocol == .http, let position = reader.table["client_hello_timeout"]?.position {
            errors.add("an http listener reads a request, not a ClientHello: use 'request_timeout'", at: position, path: reader.keyPath("client_hello_timeout"))
        }
        if listenerProtocol != .http, let position = reader.table["request_timeout"]?.position {
            errors.add("'request_timeout' is for protocol = \"http\"; this listener's is 'client_hello_timeout'", at: position, path: reader.keyPath("request_timeout"))
        }
        return (listenerProtocol == .http ? request : hello) ?? (listenerProtocol == .http ? ConfigurationDefaults.requestTimeout : ConfigurationDefaults.clientHelloTimeout)
    }
}

extension ErrorCollector {
    /// An error located in another file (a list file).
    func addElsewhere(file: String, _ message: String, at position: SourcePosition) {
        appendError(ConfigurationError(file: file, position: position, keyPath: "", message: message))
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and carriage returns.
    public func trimmingASCIIWhitespace() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" || first == "\r" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" || last == "\r" { view.removeLast() }
        return String(view)
    }
}
