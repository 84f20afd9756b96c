import TailgateTOML

extension ConfigurationLoader {
    static let firewallKeys = [
        "enabled", "allow", "tailnet_interfaces", "trusted_interfaces", "tcp_ports", "udp_ports", "action", "check_interval",
    ]

    static func readFirewall(_ table: TOMLTable, errors: ErrorCollector) -> FirewallConfiguration {
        var reader = TableReader(table, path: "firewall", errors: errors)
        var firewall = FirewallConfiguration()
        if let enabled = reader.typed("enabled", "true or false", \.bool) { firewall.enabled = enabled.value }
        if let allow = reader.array("allow", of: "address prefixes", { parseNetwork($0, path: $1, errors: errors) }) {
            firewall.allow = allow
        }
        for (key, keyPath) in [("tailnet_interfaces", \FirewallConfiguration.tailnetInterfaces), ("trusted_interfaces", \.trustedInterfaces)] {
            if let names = reader.array(key, of: "interface names", { parseInterface($0, path: $1, errors: errors) }) {
                firewall[keyPath: keyPath] = names
            }
        }
        for (key, keyPath) in [("tcp_ports", \FirewallConfiguration.tcpPorts), ("udp_ports", \.udpPorts)] {
            if let ports = reader.array(key, of: "ports or \"low-high\" ranges", { value, path in
                parsePorts(value, path: path, errors: errors).map { Located($0, at: value.position) }
            }) {
                firewall[keyPath: keyPath] = ports.map(\.value).sorted()
                reportOverlaps(ports, path: reader.keyPath(key), errors: errors)
            }
        }
        firewall.action = reader.choice("action", FirewallConfiguration.Action.self) ?? firewall.action
        firewall.checkInterval = reader.duration("check_interval", minimum: .seconds(1)) ?? firewall.checkInterval
        reader.reportUnknownKeys(expected: firewallKeys)
        // Empty as written; names refused above have their own errors.
        let noInterfaces = reader.table["tailnet_interfaces"]?.array.map(\.isEmpty) ?? firewall.tailnetInterfaces.isEmpty
        if firewall.enabled, noInterfaces, firewall.tcpPorts.count + firewall.udpPorts.count > 0 {
            errors.add("'tailnet_interfaces' is empty: tailnet sources would never be allowed; name the tailnet interface (e.g. \"tailscale0\")",
                       at: reader.table["tailnet_interfaces"]?.position ?? table.position, path: "firewall.tailnet_interfaces")
        }
        if firewall.enabled, firewall.tcpPorts.isEmpty, firewall.udpPorts.isEmpty {
            errors.warn("restricts no port: list tcp_ports or udp_ports (the empty table is still installed, which needs CAP_NET_ADMIN)",
                        at: table.position, path: "firewall")
        }
        if firewall.enabled, firewall.allow.isEmpty, let allow = reader.table["allow"], firewall.tcpPorts.count + firewall.udpPorts.count > 0 {
            errors.warn("no tailnet source is allowed: only trusted_interfaces reach the restricted ports", at: allow.position, path: "firewall.allow")
        }
        return firewall
    }

    /// Linux interface names: 1–15 bytes, no '/', whitespace or ':'.
    private static func parseInterface(_ value: TOMLValue, path: String, errors: ErrorCollector) -> String? {
        guard let name = value.string else {
            errors.add("expected an interface name, found \(value.typeName)", at: value.position, path: path)
            return nil
        }
        let valid = !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".."
            && name.utf8.allSatisfy { byte in
                byte > 0x20 && byte < 0x7F && !"/:\"*\\".utf8.contains(byte)
            }
        guard valid else {
            errors.add("\"\(name)\" is not a valid interface name (1–15 characters; no spaces, '/', ':', '\"', '*' or '\\')", at: value.position, path: path)
            return nil
        }
        return name
    }

    static func parsePorts(_ value: TOMLValue, path: String, errors: ErrorCollector) -> FirewallConfiguration.PortRange? {
        if let number = value.integer {
            guard (1...65_535).contains(number) else {
                errors.add("port \(number) is out of range 1–65535", at: value.position, path: path)
                return nil
            }
            return .init(UInt16(number))
        }
        guard let text = value.string else {
            errors.add("expected a port number or a \"low-high\" range string, found \(value.typeName)", at: value.position, path: path)
            return nil
        }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let numbers = parts.map { part -> UInt16? in
            guard !part.isEmpty, part.count <= 5, part.allSatisfy(\.isASCIIDigit), let value = Int(part), (1...65_535).contains(value) else { return nil }
            return UInt16(value)
        }
        guard (1...2).contains(numbers.count), let lower = numbers.first ?? nil, let upper = numbers.last ?? nil else {
            errors.add("\"\(text)\" is not a port or a \"low-high\" range of ports 1–65535", at: value.position, path: path)
            return nil
        }
        guard lower <= upper else {
            errors.add("range \"\(text)\" is reversed; write \"\(upper)-\(lower)\"", at: value.position, path: path)
            return nil
        }
        return .init(lower, upper)
    }

    static func reportOverlaps(_ ports: [Located<FirewallConfiguration.PortRange>], path: String, errors: ErrorCollector) {
        let sorted = ports.sorted { ($0.value, $0.position) < ($1.value, $1.position) }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.value.lower <= previous.value.upper {
            let later = previous.position > next.position ? previous : next
            errors.add("ports \(previous.value) and \(next.value) overlap", at: later.position, path: path)
        }
    }
}
