import Logging
import NIOConcurrencyHelpers
import NIOCore
import TailgateConfig

/// Live connections per upstream server, across reloads: what a blue/green deploy waits on
/// before it stops the old servers.
public final class ServerUsage: Sendable {
    private struct State {
        var active: [SocketAddress: Int] = [:]
        /// Bytes relayed both ways by each server's finished connections, since start.
        var bytes: [SocketAddress: Int] = [:]
        /// Servers that left the configuration while connections still used them.
        var departed: Set<SocketAddress> = []
    }

    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    func acquire(_ server: SocketAddress) {
        state.withLockedValue { $0.active[server, default: 0] += 1 }
    }

    func release(_ server: SocketAddress, bytes: Int = 0) {
        let drained = state.withLockedValue { state -> Bool in
            if bytes > 0 { state.bytes[server, default: 0] += bytes }
            let left = (state.active[server] ?? 1) - 1
            state.active[server] = left > 0 ? left : nil
            guard left <= 0, state.departed.contains(server) else { return false }
            state.departed.remove(server)
            return true
        }
        if drained {
            logger.info("removed server has no connections left", metadata: ["server": .string(server.endpointDescription)])
        }
    }

    /// Connections currently relayed to each server.
    public var snapshot: [SocketAddress: Int] {
        state.withLockedValue { $0.active }
    }

    /// Bytes relayed both ways by each server's finished connections since start.
    public var bytesRelayed: [SocketAddress: Int] {
        state.withLockedValue { $0.bytes }
    }

    /// Notes the servers that a new configuration no longer lists, logging how many connections each still
    /// carries (one with none is also said to have none left, the line a blue/green script waits for), and
    /// forgets those listed again (a rollback): their connections are no longer waited on.
    public func serversChanged(left: Set<SocketAddress>, present: Set<SocketAddress>) {
        let counts = state.withLockedValue { state -> [SocketAddress: Int] in
            state.departed.subtract(present)
            var counts: [SocketAddress: Int] = [:]
            for server in left {
                let count = state.active[server] ?? 0
                if count > 0 { state.departed.insert(server) }
                counts[server] = count
            }
            return counts
        }
        for (server, count) in counts.sorted(by: { $0.key.endpointDescription < $1.key.endpointDescription }) {
            let name = server.endpointDescription
            logger.info("server left the configuration", metadata: ["server": .string(name), "connections": .stringConvertible(count)])
            if count == 0 {
                logger.info("removed server has no connections left", metadata: ["server": .string(name)])
            }
        }
    }

    /// Servers that left the configuration and still carry connections.
    public var departedServers: [SocketAddress: Int] {
        state.withLockedValue { state in
            Dictionary(uniqueKeysWithValues: state.departed.map { ($0, state.active[$0] ?? 0) })
        }
    }
}
