import Glibc
import NIOCore
import NIOPosix
import TailgateWire

/// The first handler of an accepted connection: reads the optional PROXY header and the ClientHello,
/// routes on the SNI, connects to a server of the chosen upstream, sends the outbound PROXY header
/// and the buffered bytes, and from then on passes everything through to the relay.
final class AdmissionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case admitting
        case connecting
        case relaying
        case closed
    }

    let policy: ListenerPolicy
    let record: ConnectionRecord
    let clientRelay: RelayHandler
    var machine: AdmissionStateMachine
    var phase = Phase.admitting
    var buffered: ByteBuffer?
    var heldRead = false
    var inputClosedWhileConnecting = false
    var timer: Scheduled<Void>?

    init(
        policy: ListenerPolicy, record: ConnectionRecord, clientRelay: RelayHandler, expectProxyHeader: Bool
    ) {
        self.policy = policy
        self.record = record
        self.clientRelay = clientRelay
        self.machine = AdmissionStateMachine(expectProxyHeader: expectProxyHeader)
    }

    func channelActive(context: ChannelHandlerContext) {
        let limit = policy.clientHelloTimeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: limit) {
            guard case .admitting = self.phase else { return }
            self.reject(.clientHelloTimeout, detail: self.machine.timeoutReason, context: context)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .relaying = phase {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        record.bytesFromClient += incoming.readableBytes
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)  // set just above
        }
        guard case .admitting = phase, var bytes = buffered else { return }
        let action = machine.process(&bytes)
        buffered = bytes
        record.adoptSource(of: machine.proxyHeader)
        switch action {
        case .needMoreData:
            return
        case .reject(let outcome, let reason):
            reject(outcome, detail: reason, context: context)
        case .admit(let hello):
            timer?.cancel()
            admit(hello, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is DrainDeadlineReached {
            timer?.cancel()
            record.end(.drainTimeout)
            context.close(promise: nil)
            return
        }
        if let event = event as? ChannelEvent, case .inputClosed = event {
            switch phase {
            case .admitting:
                // Nothing, or only a PROXY header (a load balancer's health check), is a probe: counted, logged quietly.
                let probe = buffered.map { $0.readableBytes == 0 } ?? true
                record.quiet = probe
                reject(.clientClosedEarly, detail: probe ? nil : "eof_before_client_hello", context: context)
                return
            case .connecting:
                inputClosedWhileConnecting = true
                return
            case .relaying, .closed:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Before routing, a client that resets just left early (as the splice engine logs it).
        if case .admitting = phase {
            // A reset before anything but a PROXY header is a probe, as a close is (TCP health checks reset).
            let reset = (error as? IOError)?.errnoCode == ECONNRESET
            record.quiet = reset && (buffered.map { $0.readableBytes == 0 } ?? true)
            reject(.clientClosedEarly, detail: SystemCallError.describe(error, side: "client"), context: context)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        switch phase {
        case .relaying:
            break
        case .admitting, .connecting, .closed:
            if record.outcome == nil { record.quiet = buffered.map { $0.readableBytes == 0 } ?? true }
            record.end(.clientClosedEarly)
        }
        phase = .closed
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        switch phase {
        case .connecting:
            heldRead = true
        case .admitting, .relaying, .closed:
            context.read()
        }
    }

    func reject(_ outcome: ConnectionOutcome, detail: String?, context: ChannelHandlerContext) {
        timer?.cancel()
        record.end(outcome, detail: detail)
        phase = .closed
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension AdmissionHandler: Sendable {}
