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

/// The HTTP endpoint monitors probe: /healthz, /readyz, /status, /metrics. It runs on its own event
/// loop, so a slow scrape never delays the proxy, and answers every request with `Connection: close`.
///
/// Its connections draw on the descriptors the proxy needs, so none is held for long: a connection must
/// send its request and take the answer within `requestDeadline`, a malformed request is answered 400 and
/// closed, and beyond `maxConnections` open at once new ones are closed as they come.
struct HealthService: Service {
    let supervisor: Supervisor
    let logger: Logger

    static let maxConnections = 256
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
        let open = HealthConnectionCount(limit: Self.maxConnections)
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
                    .childChannelInitializer { channel in
                        guard open.enter() else {
                            if open.shouldWarn(now: .now()) {
                                logger.warning("health endpoint: too many open connections; closing new ones", metadata: [
                                    "limit": .stringConvertible(Self.maxConnections),
                                ])
                            }
                            return channel.close()
                        }
                        channel.closeFuture.whenComplete { _ in open.leave() }
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                            try channel.pipeline.syncOperations.addHandler(
                                HealthHTTPHandler(responder: responder, deadline: Self.requestDeadline)
                            )
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
    var status: HTTPResponseStatus
    var contentType: String
    var body: String
}

/// How many connections the endpoint holds, against its limit.
final class HealthConnectionCount: Sendable {
    private let limit: Int
    private let count = Atomic<Int>(0)
    private let lastWarning = Mutex<NIODeadline?>(nil)

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts a new connection, or returns false when `limit` are open.
    func enter() -> Bool {
        var current = count.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = count.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func leave() {
        count.subtract(1, ordering: .relaxed)
    }

    /// At most one warning a minute.
    func shouldWarn(now: NIODeadline) -> Bool {
        lastWarning.withLock { last in
            if let last, now - last < .seconds(60) { return false }
            last = now
            return true
        }
    }
}

/// One request per connection: read the head, answer, close. A connection that has not been answered
/// within the deadline (a slow or idle client) is closed, and so is one whose request does not parse (after
/// NIO's error handler has answered it 400).
final class HealthHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: HealthResponder
    private let deadline: TimeAmount
    private var head: HTTPRequestHead?
    private var answering = false
    private var timer: Scheduled<Void>?

    init(responder: HealthResponder, deadline: TimeAmount) {
        self.responder = responder
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head, !answering else { return }
            self.head = nil
            answering = true
            let responder = self.responder
            context.eventLoop.makeFutureWithTask {
                await responder.respond(method: head.method, uri: head.uri)
            }.assumeIsolated().whenSuccess { response in
                Self.write(response, isHead: head.method == .HEAD, version: head.version, context: context)
            }
        }
    }

    private static func write(_ response: HealthResponse, isHead: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        let body = ByteBuffer(string: response.body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Cache-Control", value: "no-store")
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
        if !isHead {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HealthHTTPHandler: Sendable {}
