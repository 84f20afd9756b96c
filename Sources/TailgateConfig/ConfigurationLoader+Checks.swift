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
        check.caFile = reader.string("check_ca")?.value
        check.rise = reader.integer("rise", in: 1...100)?.value ?? check.rise
        check.fall = reader.integer("fall", in: 1...100)?.value ?? check.fall
        return check
    }

    /// A TLS check without `check_sni` uses the first exact route name (in file order) that points at the upstream.
    static func applyCheckServerNames(_ upstreams: inout [String: UpstreamConfiguration], listeners: [ListenerConfiguration]) {
        for (name, upstream) in upstreams where upstream.check.kind == .tls && upstream.check.serverName == nil {
            for listener in listeners {
                for route in listener.routeList where route.upstream == name {
                    if case .exact(let host) = route.pattern {
                        upstreams[name]?.check.serverName = host
                        break
                    }
                }
                if upstreams[name]?.check.serverName != nil { break }
            }
        }
    }
}
