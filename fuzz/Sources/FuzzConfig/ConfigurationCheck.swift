import FuzzSupport
import TailgateConfig

/// What a configuration that loaded without errors must satisfy.
enum ConfigurationCheck {
    static func check(_ configuration: TailgateConfiguration, bounds: TextBounds) {
        for (name, upstream) in configuration.upstreams {
            Invariant.check(upstream.name == name, "upstream \(name) calls itself \(upstream.name)")
            Invariant.check(!upstream.servers.isEmpty, "upstream \(name) loaded without servers")
            for server in upstream.servers {
                Invariant.check(
                    bounds.contains(line: server.position.line, column: server.position.column),
                    "server \(server.value) of \(name) located outside the text at \(server.position)"
                )
            }
        }
        var listenerNames: Set<String> = []
        for listener in configuration.listeners {
            Invariant.check(listenerNames.insert(listener.name).inserted, "listener \(listener.name) loaded twice")
            for bind in listener.binds {
                Invariant.check(
                    bounds.contains(line: bind.position.line, column: bind.position.column),
                    "bind \(bind.value) of \(listener.name) located outside the text at \(bind.position)"
                )
            }
            var targets = listener.routeList.map(\.upstream)
            if let fallback = listener.routes.defaultUpstream {
                targets.append(fallback)
            }
            for target in targets {
                Invariant.check(configuration.upstreams[target] != nil, "listener \(listener.name) routes to undefined \(target)")
            }
            Invariant.check(listener.routes.count == listener.routeList.count, "listener \(listener.name) lost a route")
            for route in listener.routeList {
                // A wildcard matches a name with one more label; an exact pattern matches itself.
                let name: String
                switch route.pattern {
                case .exact(let exact): name = exact
                case .wildcard(let suffix): name = "a" + suffix
                }
                Invariant.check(
                    listener.routes.route(serverName: name).upstream != nil,
                    "listener \(listener.name) does not route \(name) of its route \(route.pattern)"
                )
            }
        }
        if let health = configuration.health {
            for address in health.listen {
                Invariant.check(
                    bounds.contains(line: address.position.line, column: address.position.column),
                    "health listen \(address.value) located outside the text at \(address.position)"
                )
            }
        }
    }
}
