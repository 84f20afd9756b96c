import Glibc
import NIOCore
import TailgateConfig
import TailgateProbe
import TailgateProxy

/// A configuration turned into what the proxy runs: upstream pools with resolved addresses and one policy per listener.
struct ProxyPlan: Sendable {
    /// A server as written, and the address it has now (nil: a name that has not resolved yet).
    struct Server: Sendable {
        let written: Endpoint
        let address: SocketAddress?
        var backup = false
    }

    let configuration: TailgateConfiguration
    let policies: [String: ListenerPolicy]
    let pools: [String: UpstreamPool]
    let generation: Int
    /// The addresses the servers' names had when this plan was made.
    let names: ResolvedNames
    /// Every upstream's servers in file order, resolved or not (for /status).
    let serverEntries: [String: [Server]]

    /// Builds the plan from addresses already resolved (`ResolvedNames.resolve`). A server whose name has no
    /// address yet is left out of its pool (an upstream with none refuses connections) and is not an error:
    /// a name that does not resolve at boot (MagicDNS before tailscaled) must not keep the proxy and the
    /// firewall down. Throws for what the file gets wrong that only the host can tell (a check_ca file).
    static func make(
        _ configuration: TailgateConfiguration, file: String, generation: Int, names: ResolvedNames, usage: ServerUsage,
        health: ServerHealthBoard = ServerHealthBoard(), metrics: ProxyMetrics = ProxyMetrics(registry: .init())
    ) throws(ConfigurationErrors) -> ProxyPlan {
        var errors: [ConfigurationError] = []
        var pools: [String: UpstreamPool] = [:]
        var servers: [String: [Server]] = [:]
        for (name, upstream) in configuration.upstreams {
            var addresses: [SocketAddress] = []
            var backups: [SocketAddress] = []
            var entries: [Server] = []
            for (server, isBackup) in upstream.servers.map({ ($0, false) }) + upstream.backup.map({ ($0, true) }) {
                let address: SocketAddress?
                switch server.value {
                case .address(let literal): address = literal
                case .hostname(let host, let port): address = names[ResolvedNames.Name(host: host, port: port)]
                }
                entries.append(Server(written: server.value, address: address, backup: isBackup))
                // A name may resolve to an address another entry has: it is used once, in its first role.
                guard let address, !addresses.contains(address), !backups.contains(address) else { continue }
                if isBackup { backups.append(address) } else { addresses.append(address) }
            }
            servers[name] = entries
            if upstream.check.kind.usesTLS, let caFile = upstream.check.caFile, let problem = TrustFile.problem(caFile.value) {
                errors.append(ConfigurationError(file: file, position: caFile.position, keyPath: "upstreams.\(name).check_ca", message: problem))
            }
            pools[name] = UpstreamPool(
                name: name, servers: addresses, backup: backups, sendProxy: upstream.sendProxy,
                connectTimeout: upstream.connectTimeout, idleTimeout: upstream.idleTimeout, failTimeout: upstream.failTimeout,
                usage: usage, health: health, metrics: metrics
            )
        }
        if !errors.isEmpty { throw ConfigurationErrors(errors) }
        var policies: [String: ListenerPolicy] = [:]
        for listener in configuration.listeners {
            policies[listener.name] = ListenerPolicy(configuration: listener, upstreams: pools, generation: generation)
        }
        return ProxyPlan(
            configuration: configuration, policies: policies, pools: pools, generation: generation, names: names, serverEntries: servers
        )
    }

    /// The same configuration with the names resolved anew (`resolve_interval`): new pools and policies,
    /// published to the listeners as a reload's are, without touching binds or the firewall.
    func renamed(_ names: ResolvedNames, usage: ServerUsage, health: ServerHealthBoard, metrics: ProxyMetrics) -> ProxyPlan? {
        try? Self.make(configuration, file: "", generation: generation, names: names, usage: usage, health: health, metrics: metrics)
    }

    /// This plan with `names` remembered (the addresses unchanged, only why lookups failed).
    func with(names: ResolvedNames) -> ProxyPlan {
        ProxyPlan(
            configuration: configuration, policies: policies, pools: pools, generation: generation, names: names, serverEntries: serverEntries
        )
    }

    /// One warning per server whose name has no address, at the line that names it.
    static func unresolvedWarnings(_ configuration: TailgateConfiguration, names: ResolvedNames, file: String) -> [ConfigurationError] {
        var warnings: [ConfigurationError] = []
        for (upstreamName, upstream) in configuration.upstreams.sorted(by: { $0.key < $1.key }) {
            let written = upstream.servers.enumerated().map { ($1, "servers[\($0)]") } + upstream.backup.enumerated().map { ($1, "backup[\($0)]") }
            for (server, key) in written {
                guard case .hostname(let host, let port) = server.value else { continue }
                let name = ResolvedNames.Name(host: host, port: port)
                guard names[name] == nil else { continue }
                let reason = names.failures[name] ?? "no address"
                warnings.append(ConfigurationError(
                    file: file, position: server.position, keyPath: "upstreams.\(upstreamName).\(key)",
                    message: "warning: cannot resolve \"\(host)\" (\(reason)); the server is down until it resolves, tried again every 2 s"
                ))
            }
        }
        return warnings
    }

    /// The resolved addresses of an upstream's servers, backups last.
    func servers(of upstream: String) -> [SocketAddress] {
        pools[upstream]?.allServers ?? []
    }
}
