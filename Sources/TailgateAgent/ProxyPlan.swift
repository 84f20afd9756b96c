import Glibc
import NIOCore
import TailgateConfig
import TailgateProbe
import TailgateProxy

/// A configuration turned into what the proxy runs: upstream pools with resolved addresses and one policy per listener.
struct ProxyPlan: Sendable {
    let configuration: TailgateConfiguration
    let policies: [String: ListenerPolicy]
    let pools: [String: UpstreamPool]
    let generation: Int

    /// Resolves upstream hostnames (blocking getaddrinfo, once per load, as nginx does at startup).
    static func make(
        _ configuration: TailgateConfiguration, file: String, generation: Int, usage: ServerUsage,
        health: ServerHealthBoard = ServerHealthBoard(), metrics: ProxyMetrics = ProxyMetrics(registry: .init())
    ) throws(ConfigurationErrors) -> ProxyPlan {
        var errors: [ConfigurationError] = []
        var pools: [String: UpstreamPool] = [:]
        for (name, upstream) in configuration.upstreams {
            var addresses: [SocketAddress] = []
            for (index, server) in upstream.servers.enumerated() {
                switch server.value {
                case .address(let address):
                    addresses.append(address)
                case .hostname(let host, let port):
                    do {
                        addresses.append(try SocketAddress.makeAddressResolvingHost(host, port: port))
                    } catch {
                        errors.append(ConfigurationError(
                            file: file, position: server.position, keyPath: "upstreams.\(name).servers[\(index)]",
                            message: "cannot resolve \"\(host)\": \(Self.describeResolution(error))"
                        ))
                    }
                }
            }
            if upstream.check.kind == .tls, let caFile = upstream.check.caFile, let problem = TrustFile.problem(caFile.value) {
                errors.append(ConfigurationError(file: file, position: caFile.position, keyPath: "upstreams.\(name).check_ca", message: problem))
            }
            guard !addresses.isEmpty else { continue }
            pools[name] = UpstreamPool(
                name: name, servers: addresses, sendProxy: upstream.sendProxy,
                connectTimeout: upstream.connectTimeout, idleTimeout: upstream.idleTimeout, failTimeout: upstream.failTimeout,
                usage: usage, health: health, metrics: metrics
            )
        }
        if !errors.isEmpty { throw ConfigurationErrors(errors) }
        var policies: [String: ListenerPolicy] = [:]
        for listener in configuration.listeners {
            policies[listener.name] = ListenerPolicy(configuration: listener, upstreams: pools, generation: generation)
        }
        return ProxyPlan(configuration: configuration, policies: policies, pools: pools, generation: generation)
    }

    /// getaddrinfo's reason, without NIO's type name and the port the caller already shows.
    private static func describeResolution(_ error: any Error) -> String {
        guard let unknown = error as? SocketAddressError.UnknownHost else { return "\(error)" }
        // EAI_AGAIN: no DNS answer, as at boot before the network (or MagicDNS) is up.
        let hint = unknown.errorCode == Int(EAI_AGAIN) ? "; names are resolved when the file is loaded: give an address or a name in /etc/hosts" : ""
        return unknown.errorDescription + hint
    }

    /// The resolved addresses of an upstream's servers.
    func servers(of upstream: String) -> [SocketAddress] {
        pools[upstream]?.servers ?? []
    }
}
