import TailgateTOML

extension ConfigurationLoader {
    static func readCheck(_ reader: inout TableReader, errors: ErrorCollector) -> UpstreamCheckConfiguration {
        var check = UpstreamCheckConfiguration()
        check.kind = reader.choice("check", UpstreamCheckConfiguration.Kind.self) ?? check.kind
        check.interval = reader.duration("check_interval", minimum: .milliseconds(100)) ?? check.interval
        check.timeout = reader.duration("check_timeout", minimum: .milliseconds(10)) ?? check.timeout
        if let name = reader.string("check_sni") {
            if HostnamePattern.isValidHostname(name.value) {
                check.serverName = HostnamePattern.normalize(name.value)
            } else {
                errors.add("\"\(name.value)\" is not a valid hostname", at: name.position, path: reader.keyPath("check_sni"))
            }
        }
        check.caFile = reader.string("check_ca")
        if let caFile = check.caFile, !caFile.value.hasPrefix("/") {
            // Relative to the working directory, which is / under systemd: say so rather than guess.
            errors.add("\"\(caFile.value)\" is not an absolute path", at: caFile.position, path: reader.keyPath("check_ca"))
        }
        if let path = reader.string("check_path") {
            // A path as a request target: no spaces or controls (they would break the request line), not empty.
            if path.value.hasPrefix("/"), path.value.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) {
                check.path = path.value
            } else {
                errors.add("\"\(path.value)\" is not a path: it must start with / and hold no spaces", at: path.position, path: reader.keyPath("check_path"))
            }
            if check.kind != .https {
                errors.warn("has no effect unless check = \"https\"", at: path.position, path: reader.keyPath("check_path"))
            }
        }
        if !check.kind.usesTLS {
            for key in ["check_sni", "check_ca"] {
                if let value = reader.table[key] {
                    errors.warn("has no effect unless check = \"tls\" or \"https\"", at: value.position, path: reader.keyPath(key))
                }
            }
        }
        check.rise = reader.integer("rise", in: 1...100)?.value ?? check.rise
        check.fall = reader.integer("fall", in: 1...100)?.value ?? check.fall
        return check
    }

    /// A TLS check without `check_sni` uses the first exact route name (in file order) that points at the upstream.
    /// Without one the check would verify no name at all (any trusted certificate would pass), so that is an error.
    static func applyCheckServerNames(
        _ upstreams: inout [String: UpstreamConfiguration], listeners: [ListenerConfiguration], document: TOMLTable, errors: ErrorCollector
    ) {
        for (name, upstream) in upstreams where upstream.check.kind.usesTLS && upstream.check.serverName == nil {
            let exact = listeners.lazy.flatMap(\.routeList).compactMap { route -> String? in
                guard route.upstream == name, case .exact(let host) = route.pattern else { return nil }
                return host
            }.first
            if let exact {
                upstreams[name]?.check.serverName = exact
                continue
            }
            let position = document["upstreams"]?.table?[name]?.table?["check"]?.position ?? document.position
            errors.add(
                "a \"\(upstream.check.kind.rawValue)\" check verifies the certificate's name, and no exact route points here to take it from: set check_sni",
                at: position, path: "upstreams.\(name).check"
            )
        }
    }
}
