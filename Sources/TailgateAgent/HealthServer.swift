import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import TailgateConfig
import TailgateProxy
import TailgateSystem

/// The HTTP endpoint monitors probe: /, /healthz, /readyz, /status, /metrics. It runs on its own event
/// loop, so a slow scrape never delays the proxy, and answers one request per connection.
///
/// Its connections draw on the descriptors the proxy needs and its clients include the load balancer and
/// Prometheus, so nobody may hold it: a connection must send a whole request head within `headDeadline`
/// (408 otherwise) and is closed `requestDeadline` after it opened at the latest; a head that does not
/// parse is answered 400, one too large 431; and `HealthConnectionTable` caps connections per source and
/// in all, closing the oldest idle connection to admit a new one.
struct HealthService: Service {
    let supervisor: Supervisor
    let logger: Logger

    static let maxConnections = 256
    static let maxConnectionsPerSource = 32
    static let headDeadline: TimeAmount = .seconds(1)
    static let requestDeadline: TimeAmount = .seconds(10)

    func run() async throws {
        guard let health = supervisor.initialHealth else {
            supervisor.closeUnclaimedHealthSockets()  // the file had [health] before this restart
            try? await gracefulShutdown()
            return
        }
        let group = supervisor.parts.healthLoops
        var channels: [any Channel] = []
        let responder = HealthResponder(supervisor: supervisor)
        let table = supervisor.parts.healthConnections
        let warnings = HealthWarnings()
        let logger = logger
        for address in health.listen {
            do {
                // A socket of its own (the listeners' options: a tailnet address may not exist yet at boot), or
                // the one passed in by the store or the predecessor, so that a restart or an upgrade refuses no
                // probe. A duplicate stays with the agent for the store and the next hand-over.
                let descriptor = try supervisor.inherited.take(.health, address.value) ?? ListeningSocket.open(address.value).descriptor
                let kept = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
                if kept >= 0 { await supervisor.keepHealthSocket(kept, address: address.value) }
                let channel = try await ServerBootstrap(group: group)
                    .childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelInitializer { channel in
                        guard let source = HealthConnectionTable.source(of: channel.remoteAddress) else { return channel.close() }
                        switch table.admit(channel, source: source) {
                        case .refused:
                            if warnings.shouldWarn(now: .now()) {
                                logger.warning("health endpoint: every connection is busy answering; closing a new one", metadata: [
                                    "limit": .stringConvertible(Self.maxConnections), "client": .string(channel.remoteAddress?.endpointDescription ?? "-"),
                                ])
                            }
                            return channel.close()
                        case .admitted(let evicting):
                            if !evicting.isEmpty, warnings.shouldWarn(now: .now()) {
                                logger.warning("health endpoint full: closing the oldest idle connections to admit new ones", metadata: [
                                    "limit": .stringConvertible(Self.maxConnections), "per_source": .stringConvertible(Self.maxConnectionsPerSource),
                                    "client": .string(channel.remoteAddress?.endpointDescription ?? "-"),
                                ])
                            }
                            for eviction in evicting {
                                if eviction.setAside {
                                    // Unread until its own head deadline closes it (see HealthConnectionTable).
                                    eviction.channel.setOption(.autoRead, value: false).whenFailure { _ in eviction.channel.close(promise: nil) }
                                } else {
                                    eviction.channel.close(promise: nil)
                                }
                            }
                        }
                        channel.closeFuture.whenComplete { _ in table.remove(channel) }
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(HealthConnectionHandler(
                                responder: responder, table: table, headDeadline: Self.headDeadline, requestDeadline: Self.requestDeadline
                            ))
                        }
                    }
                    .withBoundSocket(descriptor).get()
                channels.append(channel)
                logger.info("health endpoint listening", metadata: ["bind": .string(address.value.endpointDescription)])
                if address.value.ipAddress == "0.0.0.0" || address.value.ipAddress == "::" {
                    // /status and /metrics name every route and server; say so when anyone can ask.
                    logger.warning("health endpoint listens on every interface: /status and /metrics reveal routes and servers; prefer 127.0.0.1 or the tailnet address", metadata: [
                        "bind": .string(address.value.endpointDescription),
                    ])
                }
            } catch {
                let reason = SystemCallError.describe(error)
                logger.error("health endpoint cannot bind \(address.value.endpointDescription): \(reason)")
                await supervisor.noteHealthBindFailure("\(address.value.endpointDescription): \(reason)")
            }
        }
        supervisor.closeUnclaimedHealthSockets()
        try? await gracefulShutdown()
        for channel in channels { try? await channel.close() }
    }
}

/// A response the endpoint sends.
struct HealthResponse: Sendable {
    var status: Int
    var contentType: String
    var body: String
    var extraHeaders: [(String, String)] = []
}

/// At most one warning a minute about the endpoint being full.
final class HealthWarnings: Sendable {
    private let lastWarning = Mutex<NIODeadline?>(nil)

    func shouldWarn(now: NIODeadline) -> Bool {
        lastWarning.withLock { last in
            if let last, now - last < .seconds(60) { return false }
            last = now
            return true
        }
    }
}
