import TailgateTOML

extension ConfigurationLoader {
    static let banKeys = ["enabled", "tcp_ports", "udp_ports", "never", "default_duration", "max_duration", "capacity", "control_socket", "crowdsec"]

    /// A listener's `ban = { after, within, for, max, on }`.
    static func readBanRule(_ listener: inout TableReader, errors: ErrorCollector) -> BanRule? {
        guard let table = listener.table("ban") else { return nil }
        var reader = TableReader(table.value, path: listener.keyPath("ban"), errors: errors)
        let after = reader.integer("after", in: 1...1_000_000)?.value
        let within = reader.duration("within", minimum: .seconds(1))
        let duration = reader.duration("for", minimum: .seconds(1))
        let max = reader.duration("max", minimum: .seconds(1))
        var offenses = Set(BanRule.Offense.allCases)
        if let listed = reader.array("on", of: "offense names", { value, path -> BanRule.Offense? in
            guard let text = value.string, let offense = BanRule.Offense(rawValue: text) else {
                errors.add("expected one of \(BanRule.Offense.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))", at: value.position, path: path)
                return nil
            }
            return offense
        }) {
            offenses = Set(listed)
        }
        reader.reportUnknownKeys(expected: ["after", "within", "for", "max", "on"])
        guard let after, let within, let duration else {
            errors.add("a ban rule needs 'after', 'within' and 'for', e.g. { after = 10, within = \"1m\", for = \"10m\", max = \"1d\" }",
                       at: table.position, path: listener.keyPath("ban"))
            return nil
        }
        return BanRule(after: after, within: within, duration: duration, max: max ?? duration, offenses: offenses)
    }

    static func readBans(_ table: TOMLTable, lists: NamedLists, errors: ErrorCollector) -> BanConfiguration {
        var reader = TableReader(table, path: "bans", errors: errors)
        var bans = BanConfiguration()
        if let enabled = reader.typed("enabled", "true or false", \.bool) { bans.enabled = enabled.value }
        for (key, keyPath) in [("tcp_ports", \BanConfiguration.tcpPorts), ("udp_ports", \.udpPorts)] {
            if let ports = reader.array(key, of: "ports or \"low-high\" ranges", { value, path in
                parsePorts(value, path: path, errors: errors).map { Located($0, at: value.position) }
            }) {
                bans[keyPath: keyPath] = ports.map(\.value).sorted()
                reportOverlaps(ports, path: reader.keyPath(key), errors: errors)
            }
        }
        if let never = readAccessEntries(&reader, "never", lists: lists, errors: errors) {
            bans.never = AddressSet.union(never.map(\.addresses))
        }
        bans.defaultDuration = reader.duration("default_duration", minimum: .seconds(1)) ?? bans.defaultDuration
        bans.maxDuration = reader.duration("max_duration", minimum: .seconds(1)) ?? bans.maxDuration
        if bans.defaultDuration > bans.maxDuration, let position = reader.table["default_duration"]?.position {
            errors.add("default_duration is longer than max_duration", at: position, path: reader.keyPath("default_duration"))
        }
        bans.capacity = reader.integer("capacity", in: 16...1_000_000)?.value ?? bans.capacity
        if let socket = reader.string("control_socket") {
            if socket.value.hasPrefix("/"), socket.value.utf8.count < 100 {
                bans.controlSocket = socket.value
            } else {
                errors.add("expected an absolute path of at most 99 bytes (a Unix socket's limit)", at: socket.position, path: reader.keyPath("control_socket"))
            }
        }
        if let table = reader.table("crowdsec") {
            var crowdsec = TableReader(table.value, path: "bans.crowdsec", errors: errors)
            let url = crowdsec.string("url")
            let keyFile = crowdsec.string("api_key_file")
            let interval = crowdsec.duration("pull_interval", minimum: .seconds(1))
            crowdsec.reportUnknownKeys(expected: ["url", "api_key_file", "pull_interval"])
            if let url, !url.value.hasPrefix("http://") {
                errors.add("expected an http:// URL of the Local API, e.g. \"http://127.0.0.1:8080\" (https is not spoken)", at: url.position, path: "bans.crowdsec.url")
            } else if let url, let keyFile {
                bans.crowdsec = CrowdSecConfiguration(url: url.value, apiKeyFile: keyFile.value, pullInterval: interval ?? .seconds(10))
            } else {
                errors.add("needs 'url' (the Local API) and 'api_key_file' (the key `cscli bouncers add` printed)", at: table.position, path: "bans.crowdsec")
            }
        }
        reader.reportUnknownKeys(expected: banKeys)
        return bans
    }
}
