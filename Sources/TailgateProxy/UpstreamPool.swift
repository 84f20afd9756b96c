import NIOCore
import Synchronization
import TailgateConfig

/// The servers of one upstream with addresses resolved, and the round-robin position shared by all event loops.
public final class UpstreamPool: Sendable {
    public let name: String
    public let servers: [SocketAddress]
    public let sendProxy: ProxyProtocolMode
    public let connectTimeout: TimeAmount
    public let idleTimeout: TimeAmount
    /// Where relayed connections per server are counted (shared by every generation).
    let usage: ServerUsage
    private let cursor = Atomic<Int>(0)

    public init(
        name: String, servers: [SocketAddress], sendProxy: ProxyProtocolMode, connectTimeout: Duration, idleTimeout: Duration,
        usage: ServerUsage
    ) {
        self.usage = usage
        precondition(!servers.isEmpty, "the loader refuses an upstream without servers")
        self.name = name
        self.servers = servers
        self.sendProxy = sendProxy
        self.connectTimeout = .milliseconds(connectTimeout.wholeMilliseconds)
        self.idleTimeout = .milliseconds(idleTimeout.wholeMilliseconds)
    }

    /// The index of the server a new connection tries first; later attempts walk on from there.
    func nextStartIndex() -> Int {
        let ticket = cursor.add(1, ordering: .relaxed).oldValue
        return Int(UInt(bitPattern: ticket) % UInt(servers.count))
    }
}
