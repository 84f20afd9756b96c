import Foundation
import Logging
import NIOCore
import Prometheus
import Synchronization
import TailgateConfig
import TailgateTestSupport
import Testing

@testable import TailgateProxy

/// The relay engine in this process, with the accept-spread thresholds injected (eager: any load brings the
/// next thread in, none lets it go, thread 0 hands connections over every second), so that joining,
/// handing over and letting go happen without a busy machine.
@Suite(.serialized)
struct RelayEngineTests {
    /// When another relay thread starts to accept, thread 0 hands it every second relaying connection: those
    /// go on exchanging as if nothing happened; once the traffic stops, the engine accepts on one thread again.
    @Test func connectionsHandedToAnotherThreadGoOnAndAnIdleEngineGoesBackToOneThread() async throws {
        guard ProcessInfo.processInfo.activeProcessorCount > 1 else { return }  // one relay thread per core
        let hello = Array(try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("TailgateWireTests/Captures/openssl-sni-alpn.bin")))
        let clients = 20
        let server = try ConversationServer(threads: clients) { $0.pingPong(helloLength: hello.count) }
        defer { server.stop() }
        let engine = try SpliceRelayEngine(threads: 2, spread: .eager)
        defer { engine.shutdown() }
        let log = CapturedLog()
        let socket = try Self.listen(relayingTo: server.port, on: engine, logger: Logger(label: "test") { _ in log })

        let port = try #require(socket.boundAddress.port)
        let connections = try PingPong.open(clients, port: port, hello: hello)
        defer { connections.forEach { $0.close() } }
        var broken: [String] = []
        var round = 0
        var handedOverAt: Int?
        while broken.isEmpty, round < 3_000, handedOverAt.map({ round < $0 + 50 }) ?? true {
            broken += PingPong.exchange(connections, round: round)
            if handedOverAt == nil, log.contains("relay connections handed to a less busy thread") { handedOverAt = round }
            round += 1
        }
        #expect(handedOverAt != nil, "no connections were handed over: \(log.messages.suffix(5))")
        #expect(log.contains("another relay thread accepts"))
        #expect(broken.isEmpty, "\(broken.count) exchanges broke, e.g. \(broken.prefix(3))")
        for client in connections { client.send("bye\n") }
        #expect(Poll.until(timeout: 10) { server.completed == clients }, "\(server.completed) of \(clients) conversations ended cleanly")
        connections.forEach { $0.close() }
        // Generous: an idle thread's load decays over a few seconds, and on a busy machine (the rest of the
        // suite, CI) its wait for a CPU counts as load too.
        #expect(Poll.until(timeout: 45) { engine.acceptingThreads == 1 }, "still \(engine.acceptingThreads) threads accepting")
        await socket.close()
    }

    /// A listening socket on 127.0.0.1 (a free port) whose connections go to 127.0.0.1:`upstream`.
    static func listen(relayingTo upstream: Int, on engine: SpliceRelayEngine, logger: Logger) throws -> BoundSocket {
        let configuration = try ConfigurationLoader.load(text: """
            [listeners.engine]
            bind = ["127.0.0.1:1"]
            default = "talk"
            [upstreams.talk]
            servers = ["127.0.0.1:\(upstream)"]
            """, file: "engine.toml")
        let metrics = ProxyMetrics(registry: PrometheusCollectorRegistry())
        let upstreamConfiguration = try #require(configuration.upstreams["talk"])
        let pool = UpstreamPool(
            name: "talk", servers: [try SocketAddress(ipAddress: "127.0.0.1", port: upstream)], sendProxy: .none,
            connectTimeout: upstreamConfiguration.connectTimeout, idleTimeout: upstreamConfiguration.idleTimeout,
            usage: ServerUsage(logger: logger), health: ServerHealthBoard(), metrics: metrics
        )
        let policy = ListenerPolicy(configuration: configuration.listeners[0], upstreams: ["talk": pool], generation: 1)
        let runtime = ListenerRuntime(policy: policy, metrics: metrics)
        return try BoundSocket.bind(try SocketAddress(ipAddress: "127.0.0.1", port: 0), listener: runtime, relay: engine, logger: logger)
    }
}

/// A log handler that keeps every message, for tests that read what the engine said.
struct CapturedLog: LogHandler {
    private let store = Store()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.lines.withLock { $0.append("\(event.message)") }
    }

    var messages: [String] { store.lines.withLock { $0 } }

    func contains(_ message: String) -> Bool {
        store.lines.withLock { $0.contains(message) }
    }

    private final class Store: Sendable {
        let lines = Mutex<[String]>([])
    }
}
