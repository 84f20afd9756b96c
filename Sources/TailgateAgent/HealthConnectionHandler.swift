import NIOCore
import TailgateConfig
import TailgateWire

/// One request on one connection of the health endpoint: what happens at each event, without I/O.
struct HealthConnectionStateMachine {
    enum State {
        /// Waiting for a whole request head; what came so far.
        case readingHead(ByteBuffer)
        /// The answer is being made or written; further input is discarded.
        case answering
        /// Answered and half-closed: input is read and discarded until the client closes or the linger ends,
        /// so that a request body still in flight cannot turn the close into a reset that destroys the answer.
        case lingering
        case closed
    }

    enum Action {
        case none
        /// Make the answer to this head.
        case answer(HTTPRequestHead, accept: String?)
        /// Send this answer, made without the responder.
        case send(HealthResponse)
        /// Half-close and linger.
        case linger
        case close
    }

    /// A head may be this large; monitors and browsers send a few hundred bytes.
    static let headLimit = 16_384

    private(set) var state: State = .readingHead(ByteBuffer())

    mutating func received(_ bytes: inout ByteBuffer) -> Action {
        guard case .readingHead(var buffer) = state else { return .none }
        buffer.writeBuffer(&bytes)
        do {
            guard let head = try HTTPRequestHeadParser(limit: Self.headLimit).parse(buffer) else {
                state = .readingHead(buffer)
                return .none
            }
            state = .answering
            return .answer(head, accept: Self.header("accept", in: buffer.readableBytesView.prefix(head.byteCount)))
        } catch {
            state = .answering
            let text = error == .tooLarge ? "request head larger than \(Self.headLimit) bytes\n" : "bad request: \(error.rawValue)\n"
            return .send(HealthResponse(status: error.status, contentType: "text/plain", body: text))
        }
    }

    /// No whole head within the deadline: a client that started one is told (408); one that sent nothing
    /// is closed.
    mutating func headDeadlinePassed() -> Action {
        guard case .readingHead(let buffer) = state else { return .none }
        guard buffer.readableBytes > 0 else {
            state = .closed
            return .close
        }
        state = .answering
        return .send(HealthResponse(status: 408, contentType: "text/plain", body: "no whole request head within the deadline\n"))
    }

    /// The client finished sending.
    mutating func inputClosed() -> Action {
        switch state {
        case .readingHead(let buffer):
            guard buffer.readableBytes > 0 else {
                state = .closed
                return .close
            }
            state = .answering
            return .send(HealthResponse(status: 400, contentType: "text/plain", body: "bad request: the request head ended early\n"))
        case .answering:
            return .none
        case .lingering:
            state = .closed
            return .close
        case .closed:
            return .none
        }
    }

    mutating func answerWritten() -> Action {
        guard case .answering = state else { return .none }
        state = .lingering
        return .linger
    }

    /// The value of the first header `name` (lower case) in a head's bytes.
    static func header(_ name: String, in head: ByteBufferView.SubSequence) -> String? {
        let lines = head.split(separator: UInt8(ascii: "\n")).dropFirst()
        let wanted = Array(name.utf8)
        for line in lines {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), line.distance(from: line.startIndex, to: colon) == wanted.count,
                  zip(line[..<colon], wanted).allSatisfy({ ($0 | 0x20) == $1 })
            else { continue }
            let value = String(decoding: line[line.index(after: colon)...], as: UTF8.self)
            return value.trimmingASCIIWhitespace()
        }
        return nil
    }
}

/// Carries out `HealthConnectionStateMachine` on a channel of the health endpoint's event loop.
final class HealthConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let responder: HealthResponder
    private let table: HealthConnectionTable
    private let headDeadline: TimeAmount
    private let requestDeadline: TimeAmount
    private var machine = HealthConnectionStateMachine()
    private var timers: [Scheduled<Void>] = []
    /// Set once the handler leaves the pipeline: an answer made after that (the channel closed while the
    /// responder worked) is dropped, not written through a context no longer in use.
    private var removed = false

    /// How long an answered connection may linger to let the client read the answer.
    static let lingerTime: TimeAmount = .seconds(2)

    init(responder: HealthResponder, table: HealthConnectionTable, headDeadline: TimeAmount, requestDeadline: TimeAmount) {
        self.responder = responder
        self.table = table
        self.headDeadline = headDeadline
        self.requestDeadline = requestDeadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timers.append(context.eventLoop.scheduleTask(in: headDeadline) {
            let (handler, context) = loopBound.value
            handler.perform(handler.machine.headDeadlinePassed(), context: context)
        })
        let channel = context.channel
        timers.append(context.eventLoop.scheduleTask(in: requestDeadline) { channel.close(promise: nil) })
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        for timer in timers { timer.cancel() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        perform(machine.received(&bytes), context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            perform(machine.inputClosed(), context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func perform(_ action: HealthConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .close:
            context.close(promise: nil)
        case .send(let response):
            table.mark(context.channel, .busy)
            write(response, isHead: false, version: "HTTP/1.1", context: context)
        case .answer(let head, let accept):
            table.mark(context.channel, .busy)
            let responder = self.responder
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask {
                // Origin form, or absolute form (http or https) reduced to it; anything else ("nope", "*") the
                // responder refuses.
                let lowered = head.target.prefix(8).lowercased()
                let absolute = lowered.hasPrefix("http://") || lowered.hasPrefix("https://")
                let target = head.target.hasPrefix("/") || absolute ? head.pathAndQuery : head.target
                return await responder.respond(method: head.method, target: target, accept: accept)
            }.whenSuccess { response in
                let (handler, context) = loopBound.value
                guard !handler.removed else { return }
                handler.write(response, isHead: head.method == "HEAD", version: head.version, context: context)
            }
        case .linger:
            table.mark(context.channel, .answered)
            context.close(mode: .output, promise: nil)
            let channel = context.channel
            timers.append(context.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) })
        }
    }

    private func write(_ response: HealthResponse, isHead: Bool, version: String, context: ChannelHandlerContext) {
        var head = "\(version) \(response.status) \(Self.reason(response.status))\r\nContent-Type: \(response.contentType)\r\n"
        head += "Content-Length: \(response.body.utf8.count)\r\nConnection: close\r\nCache-Control: no-store\r\n"
        for (name, value) in response.extraHeaders { head += "\(name): \(value)\r\n" }
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count + 2 + (isHead ? 0 : response.body.utf8.count))
        buffer.writeString(head + "\r\n")
        if !isHead { buffer.writeString(response.body) }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { result in
            let (handler, context) = loopBound.value
            guard !handler.removed else { return }
            guard case .success = result else { return context.close(promise: nil) }
            handler.perform(handler.machine.answerWritten(), context: context)
        }
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

@available(*, unavailable)
extension HealthConnectionHandler: Sendable {}
