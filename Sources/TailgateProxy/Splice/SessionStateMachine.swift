import Glibc
import NIOCore
import TailgateWire

/// The life of one relayed connection, as a pure state machine: admitting (PROXY header and ClientHello),
/// connecting to a server of the routed upstream, sending the greeting (PROXY header out and the bytes read
/// so far), relaying both ways, closed. Each state carries what is valid in it.
///
/// One method per event (epoll readiness of either socket, the timer, a resumption, the drain deadline) and
/// one per result of an action the I/O layer (`SpliceSession`) performed; each returns the next `Action`.
/// Nothing here touches a socket, so every event in every state is tested without one.
struct SessionStateMachine {
    enum Side: Equatable {
        case client, upstream
    }

    enum State {
        case admitting(Admitting)
        case connecting(Connecting)
        case greeting(Greeting)
        case relaying(Relaying)
        case closed
    }

    // Each state's payload is an object the enum carries: the enum is then one pointer wide, so a relaying
    // session holds only what relaying needs, and an event changes its state in place.

    final class Admitting {
        var decision: AdmissionStateMachine
        /// Everything the client sent so far (nil until its first bytes).
        var received: ByteBuffer?
        let deadline: NIODeadline
        /// The client's input as epoll reported it (only the source side is used).
        var fromClient = RelayDirection()

        init(decision: AdmissionStateMachine, deadline: NIODeadline) {
            self.decision = decision
            self.deadline = deadline
        }
    }

    /// Where a routed connection goes: the servers to try in order, and the upstream's timeouts.
    struct Route {
        var servers: [SocketAddress]
        var connectTimeout: TimeAmount
        var idleTimeout: TimeAmount
    }

    final class Connecting {
        let route: Route
        /// Index into `route.servers` of the server being connected to.
        var attempt = 0
        var deadline: NIODeadline
        /// The PROXY header and the bytes read while admitting, for the server once connected.
        let greeting: ByteBuffer
        /// The client's input is noted while the connect runs; nothing is read until the greeting is out.
        var toUpstream: RelayDirection

        init(route: Route, deadline: NIODeadline, greeting: ByteBuffer, toUpstream: RelayDirection) {
            self.route = route
            self.deadline = deadline
            self.greeting = greeting
            self.toUpstream = toUpstream
        }
    }

    final class Greeting {
        let route: Route
        var greeting: ByteBuffer
        let lastActivity: NIODeadline
        var toUpstream: RelayDirection
        var toClient: RelayDirection

        init(route: Route, greeting: ByteBuffer, lastActivity: NIODeadline, toUpstream: RelayDirection, toClient: RelayDirection) {
            self.route = route
            self.greeting = greeting
            self.lastActivity = lastActivity
            self.toUpstream = toUpstream
            self.toClient = toClient
        }
    }

    /// The state every relayed byte passes through (a value copied out of the enum and back on each event
    /// cost 4 % more CPU per keep-alive request; docs/performance.md).
    final class Relaying {
        let idleTimeout: TimeAmount
        var lastActivity: NIODeadline
        var toUpstream: RelayDirection
        var toClient: RelayDirection
        /// The client socket is watched for EPOLLOUT too (only once a write to it had to wait; the upstream
        /// socket always is, from its connect on).
        var clientWatchesOutput = false
        /// An event carried EPOLLHUP or EPOLLERR for this side: its error is read once the pumps ran (reading
        /// SO_ERROR clears it, and a read must still see the reset after the bytes that came before it).
        var hangUp: Side?
        /// A pump stopped at its round limit with input left.
        var cutShort = false

        init(idleTimeout: TimeAmount, lastActivity: NIODeadline, toUpstream: RelayDirection, toClient: RelayDirection) {
            self.idleTimeout = idleTimeout
            self.lastActivity = lastActivity
            self.toUpstream = toUpstream
            self.toClient = toClient
        }
    }

    /// How a connection ends.
    struct Closing {
        var outcome: ConnectionOutcome
        var detail: String?
        /// A probe (nothing, or only a PROXY header, before it left): logged at debug level only.
        var quiet = false
        /// The pipes the directions held, with the bytes still in them (empty, and so not allocated, for
        /// most connections).
        var pipes: [(pipe: SplicePipe, pending: Int)] = []
        /// A trusted peer's PROXY header, when the connection ends during admission after it was read.
        var proxyHeader: ProxyHeader?
        /// What an http listener answers before closing (a redirect, or 400/403/404/408/431).
        var response: [UInt8]?
    }

    enum Action {
        /// Nothing to do until the next event.
        case wait
        /// recv from the client into the scratch buffer and report `received`, `clientEnded`, … .
        case receiveFromClient
        /// Route this ClientHello; answer `routed` or `notRouted`. `received` holds the ClientHello and
        /// whatever followed it (a trusted peer's PROXY header is `proxyHeader` until the answer).
        case route(ClientHelloInfo, received: ByteBuffer)
        /// Route this request head (an http listener); answer `routed`, `answered` or `notRouted`.
        case routeRequest(HTTPRequestHead, received: ByteBuffer)
        /// Open a socket to `server` and start connecting; answer `connectStarted` or `connectFailed`.
        case connect(SocketAddress)
        /// Close the upstream socket of a failed attempt, then answer `connectFailed(reason)`.
        case abandonAttempt(SocketAddress, reason: String)
        /// Read the socket's pending error (SO_ERROR) and answer `socketError`.
        case fetchError(Side)
        /// The connect to `server` succeeded: count it, then answer `greetingReady`.
        case connected(SocketAddress)
        /// Write these greeting bytes to the upstream; answer `greetingSent` or `greetingFailed`.
        case sendGreeting(ByteBuffer)
        /// Move bytes both ways: `pump(now:_:)` with the pumps of both directions.
        case pump
        /// Watch the client socket for EPOLLOUT too, then answer `watchingClientOutput`.
        case watchClientOutput
        /// Come back to this session after the other events of this turn (`resumed`).
        case resumeLater
        /// Close both sockets, give back or close the pipes, and write the connection's log line.
        case close(Closing)
    }

    /// Why a pump could not go on: the failed call's errno (nil when it is not a peer's doing) and the log reason.
    struct PumpFailure: Error {
        var errno: CInt?
        var detail: String
    }

    /// What the pumps of one `pump` did.
    struct PumpReport {
        var failure: PumpFailure?
        /// Bytes were read from either side (the connection is not idle).
        var moved = false
    }

    /// Changed only by the machine's own methods (here and in SessionStateMachine+Events.swift).
    var state: State

    /// While admitting: the PROXY header a trusted peer sent, once decoded (the connection is logged with
    /// its client from then on; a close during admission carries it in `Closing`).
    var proxyHeader: ProxyHeader? {
        if case .admitting(let admitting) = state { return admitting.decision.proxyHeader }
        return nil
    }

    init(expectProxyHeader: Bool, plainTCP: Bool = false, http: Bool = false, helloDeadline: NIODeadline) {
        let decision = AdmissionStateMachine(expectProxyHeader: expectProxyHeader, plainTCP: plainTCP, http: http)
        state = .admitting(Admitting(decision: decision, deadline: helloDeadline))
    }

    var isRelaying: Bool {
        if case .relaying = state { return true }
        return false
    }

    var clientWatchesOutput: Bool {
        if case .relaying(let relaying) = state { return relaying.clientWatchesOutput }
        return false
    }

    /// While connecting: the server being tried, and whether another follows it.
    var attempt: (server: SocketAddress, hasNext: Bool)? {
        guard case .connecting(let connecting) = state else { return nil }
        return (connecting.route.servers[connecting.attempt], connecting.attempt + 1 < connecting.route.servers.count)
    }

    /// Ends the connection now (the I/O layer's own failures: epoll_ctl, pipe2; the drain deadline).
    mutating func fail(_ outcome: ConnectionOutcome, detail: String?, quiet: Bool = false, response: [UInt8]? = nil) -> Action {
        var closing = Closing(outcome: outcome, detail: detail, quiet: quiet, response: response)
        switch state {
        case .admitting(let admitting):
            closing.proxyHeader = admitting.decision.proxyHeader
        case .connecting, .greeting:
            break  // nothing was pumped yet: no pipe
        case .relaying(let relaying):
            if let pipe = relaying.toUpstream.pipe { closing.pipes.append(pipe) }
            if let pipe = relaying.toClient.pipe { closing.pipes.append(pipe) }
        case .closed:
            return .wait
        }
        state = .closed
        return .close(closing)
    }

    /// The drain deadline passed (or the agent stops): the connection is cut.
    mutating func drainDeadline() -> Action {
        fail(.drainTimeout, detail: nil)
    }

    /// A peer that resets or vanishes ends the connection as `reset`, or as `closed` once one side had already
    /// finished (a client that closes without reading the server's close_notify resets; that is a normal end);
    /// anything else is an `error`.
    static func peerFailure(_ error: CInt, eitherFinished: Bool) -> ConnectionOutcome {
        guard error == ECONNRESET || error == EPIPE else { return .error }
        return eitherFinished ? .closed : .reset
    }
}

@available(*, unavailable)
extension SessionStateMachine.Relaying: Sendable {}
