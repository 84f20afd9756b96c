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
        recordFailure(error)
        context.close(promise: nil)
    }

    /// A failed read or write on this side's socket. A peer that resets or vanishes ends the connection as
    /// `reset`, or as `closed` once one direction had finished (as the splice engine judges it); anything
    /// else is an `error`.
    private func recordFailure(_ error: any Error) {
        let code = (error as? IOError)?.errnoCode
        let outcome: ConnectionOutcome
        if code == ECONNRESET || code == EPIPE {
            outcome = inputClosed || partner?.inputClosed == true ? .closed : .reset
        } else {
            outcome = .error
        }
        record.end(outcome, detail: SystemCallError.describe(error, side: side == .client ? "client" : "upstream"))
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

    /// NIO reports a write that fails (the peer reset) only to the write's promise, and closes the channel:
    /// without one, the connection would end with no outcome, as if it had finished normally. Writes to a
    /// channel already closed fail with a `ChannelError`, which says nothing new.
    private func partnerWrite(_ buffer: ByteBuffer) {
        guard let context else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(wrapOutboundOut(buffer), promise: written)
        written.futureResult.assumeIsolated().whenFailure { [weak self] error in
            if error is IOError { self?.recordFailure(error) }
        }
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
