import Glibc
import NIOCore

/// One side of a relayed pair: what it reads it writes to its partner's channel, holding reads
/// while the partner cannot take more (backpressure), and passing half-closes through.
///
/// Both handlers of a pair live on the same event loop.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side { case client, upstream }

    let side: Side
    let record: ConnectionRecord
    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private var inputClosed = false
    private var outputClosed = false

    init(side: Side, record: ConnectionRecord) {
        self.side = side
        self.record = record
    }

    /// Joins two handlers so that each writes to the other.
    static func pair(_ client: RelayHandler, _ upstream: RelayHandler) {
        client.partner = upstream
        upstream.partner = client
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch side {
        case .client: record.bytesFromClient += buffer.readableBytes
        case .upstream: record.bytesFromServer += buffer.readableBytes
        }
        record.lastActivity = .now()
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClose()
        record.channelClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            inputClosed = true
            partner?.partnerWriteEOF()
            closeIfDone()
        } else if let event = event as? ChannelEvent, case .outputClosed = event {
            outputClosed = true
            closeIfDone()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reset = (error as? IOError).map { $0.errnoCode == ECONNRESET || $0.errnoCode == EPIPE } ?? false
        record.end(reset ? .reset : .error, detail: "\(side == .client ? "client" : "upstream"): \(error)")
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.partnerIsWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    // MARK: - Called by the partner

    private var partnerIsWritable: Bool {
        context?.channel.isWritable ?? false
    }

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    /// The partner's peer finished sending: finish ours once what was written has gone out.
    private func partnerWriteEOF() {
        guard let context, !outputClosed else { return }
        let flushed = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: flushed)
        flushed.futureResult.assumeIsolated().whenSuccess { [weak self] in
            guard let self, let context = self.context, !self.outputClosed else { return }
            context.close(mode: .output, promise: nil)
        }
    }

    private func partnerClose() {
        context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    /// Both directions are done once we have read our peer's EOF and sent ours.
    private func closeIfDone() {
        if inputClosed, outputClosed {
            context?.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension RelayHandler: Sendable {}
