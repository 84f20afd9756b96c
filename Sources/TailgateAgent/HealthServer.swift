import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import TailgateConfig

/// The HTTP endpoint monitors probe: /healthz, /readyz, /status, /metrics. It runs on its own event
/// loop, so a slow scrape never delays the proxy, and answers every request with `Connection: close`.
struct HealthService: Service {
    let supervisor: Supervisor
    let logger: Logger

    func run() async throws {
        guard let health = supervisor.initialHealth else {
            try? await gracefulShutdown()
            return
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var channels: [any Channel] = []
        let responder = HealthResponder(supervisor: supervisor)
        for address in health.listen {
            do {
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                            try channel.pipeline.syncOperations.addHandler(HealthHTTPHandler(responder: responder))
                        }
                    }
                    .bind(to: address.value).get()
                channels.append(channel)
                logger.info("health endpoint listening", metadata: ["bind": .string(address.value.endpointDescription)])
                if address.value.ipAddress == "0.0.0.0" || address.value.ipAddress == "::" {
                    // /status and /metrics name every route and server; say so when anyone can ask.
                    logger.warning("health endpoint listens on every interface: /status and /metrics reveal routes and servers; prefer 127.0.0.1 or the tailnet address", metadata: [
                        "bind": .string(address.value.endpointDescription),
                    ])
                }
            } catch {
                logger.error("health endpoint cannot bind \(address.value.endpointDescription): \(error)")
                await supervisor.noteHealthBindFailure("\(address.value.endpointDescription): \(error)")
            }
        }
        try? await gracefulShutdown()
        for channel in channels { try? await channel.close() }
        try? await group.shutdownGracefully()
    }
}

/// A response the endpoint sends.
struct HealthResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: String
}

/// One request at a time per connection: read the head, answer, close.
final class HealthHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: HealthResponder
    private var head: HTTPRequestHead?

    init(responder: HealthResponder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
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
