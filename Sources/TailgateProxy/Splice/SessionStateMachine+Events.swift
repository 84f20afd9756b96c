import Glibc
import NIOCore
import TailgateSystem
import TailgateWire

extension SessionStateMachine {
    // MARK: - Events

    /// What one epoll event says about a socket, as the directions take it.
    private struct Readiness {
        /// Something for a read to find (input, the FIN, or an error the read reports).
        let input: Bool
        let peerClosed: Bool
        /// Room for a write (or an error the write reports).
        let writable: Bool
        /// EPOLLHUP or EPOLLERR.
        let failed: Bool

        init(_ events: EpollEvents) {
            input = !events.isDisjoint(with: .readable)
            peerClosed = !events.isDisjoint(with: .peerDone)
            writable = !events.isDisjoint(with: .writable)
            failed = !events.isDisjoint(with: .failed)
        }
    }

    /// Epoll reported `events` for the client socket.
    mutating func clientEvent(_ events: EpollEvents, now: NIODeadline) -> Action {
        let ready = Readiness(events)
        switch state {
        case .admitting(let admitting):
            admitting.fromClient.sourceReported(input: ready.input, peerClosed: ready.peerClosed)
            if case .readable = admitting.fromClient.source { return .receiveFromClient }
            return .wait
        case .connecting(let connecting):
            // Not reading the client yet, but a reset or hang-up ends it now rather than when the server answers.
            connecting.toUpstream.sourceReported(input: ready.input, peerClosed: ready.peerClosed)
            return ready.failed ? .fetchError(.client) : .wait
        case .greeting(let greeting):
            greeting.toUpstream.sourceReported(input: ready.input, peerClosed: ready.peerClosed)
            return ready.failed ? .fetchError(.client) : .wait
        case .relaying(let relaying):
            relaying.toUpstream.sourceReported(input: ready.input, peerClosed: ready.peerClosed)
            if ready.writable { relaying.toClient.destinationWritable() }
            if ready.failed { relaying.hangUp = .client }
            return .pump
        case .closed:
            return .wait
        }
    }

    /// Epoll reported `events` for the upstream socket.
    mutating func upstreamEvent(_ events: EpollEvents, now: NIODeadline) -> Action {
        let ready = Readiness(events)
        switch state {
        case .admitting, .closed:
            return .wait
        case .connecting(let connecting):
            // Writable without an error or hang-up is a connect that succeeded; only a failure needs SO_ERROR.
            if ready.failed { return .fetchError(.upstream) }
            guard events.contains(.output) else { return .wait }
            var toClient = RelayDirection()
            toClient.sourceReported(input: ready.input, peerClosed: ready.peerClosed)
            var toUpstream = connecting.toUpstream
            toUpstream.destinationWritable()
            state = .greeting(Greeting(
                route: connecting.route, greeting: connecting.greeting, lastActivity: now, toUpstream: toUpstream, toClient: toClient
            ))
            return .connected(connecting.route.servers[connecting.attempt])
        case .greeting(let greeting):
            greeting.toClient.sourceReported(input: ready.input, peerClosed: ready.peerClosed)
            guard ready.writable else { return .wait }
            // An error shows in the write, which then fails the connection.
            greeting.toUpstream.destinationWritable()
            return .sendGreeting(greeting.greeting)
        case .relaying(let relaying):
            relaying.toClient.sourceReported(input: ready.input, peerClosed: ready.peerClosed)
            if ready.writable { relaying.toUpstream.destinationWritable() }
            if ready.failed { relaying.hangUp = .upstream }
            return .pump
        }
    }

    /// The timer pass: the ClientHello and connect deadlines, and the idle timeout.
    mutating func timer(now: NIODeadline) -> Action {
        switch state {
        case .admitting(let admitting):
            guard now >= admitting.deadline else { return .wait }
            if admitting.decision.readsHTTP {
                return fail(.requestTimeout, detail: admitting.decision.timeoutReason, response: HTTPAnswer.status(408))
            }
            return fail(.clientHelloTimeout, detail: admitting.decision.timeoutReason)
        case .connecting(let connecting):
            guard now >= connecting.deadline else { return .wait }
            let limit = connecting.route.connectTimeout.nanoseconds / 1_000_000
            return .abandonAttempt(connecting.route.servers[connecting.attempt], reason: "connect timed out after \(limit) ms")
        case .greeting(let greeting):
            guard now - greeting.lastActivity >= greeting.route.idleTimeout else { return .wait }
            return fail(.idleTimeout, detail: nil)
        case .relaying(let relaying):
            guard now - relaying.lastActivity >= relaying.idleTimeout else { return .wait }
            return fail(.idleTimeout, detail: nil)
        case .closed:
            return .wait
        }
    }

    /// The session is served again without an event: after a pump that stopped at its round limit, or on
    /// the thread a relaying session was handed to (which registered its sockets anew).
    mutating func resumed() -> Action {
        guard case .relaying(let relaying) = state else { return .wait }
        relaying.cutShort = false
        return .pump
    }

    // MARK: - Admission results

    /// A recv from the client brought `bytes` into a buffer of `capacity`.
    mutating func received(_ bytes: UnsafeRawBufferPointer, capacity: Int) -> Action {
        guard case .admitting(let admitting) = state else { return .wait }
        admitting.fromClient.read(bytes.count, capacity: capacity)
        var buffer = admitting.received ?? ByteBuffer()
        admitting.received = nil
        buffer.writeBytes(bytes)
        let decision = admitting.decision.process(&buffer)
        admitting.received = buffer
        switch decision {
        case .needMoreData:
            switch admitting.fromClient.source {
            case .readable: return .receiveFromClient
            case .ended: return clientEnded()
            default: return .wait
            }
        case .reject(let outcome, let reason):
            return fail(outcome, detail: reason)
        case .admit(let hello):
            return .route(hello, received: buffer)
        case .admitRequest(let head):
            return .routeRequest(head, received: buffer)
        case .refuseRequest(let error):
            return fail(.badRequest, detail: error.rawValue, response: HTTPAnswer.status(error.status))
        }
    }

    /// A plain TCP connection that waits for no PROXY header is routed as accepted, before the client sends
    /// anything (an SSH server speaks first).
    mutating func accepted() -> Action {
        guard case .admitting(let admitting) = state, admitting.decision.admitsAtOnce else { return .wait }
        return .route(.none, received: ByteBuffer())
    }

    /// The client's receive queue is empty (EAGAIN).
    mutating func clientReadWouldBlock() -> Action {
        guard case .admitting(let admitting) = state else { return .wait }
        admitting.fromClient.readWouldBlock()
        return .wait
    }

    /// The client closed before its ClientHello was complete. Nothing, or only a PROXY header (a load
    /// balancer's health check), is a probe: counted, logged quietly.
    mutating func clientEnded() -> Action {
        guard case .admitting(let admitting) = state else { return .wait }
        let probe = (admitting.received?.readableBytes ?? 0) == 0
        return fail(.clientClosedEarly, detail: probe ? nil : "eof_before_client_hello", quiet: probe)
    }

    /// A recv from the client failed. Leaving with a reset instead of a FIN (SO_LINGER 0, as TCP health
    /// checks do) before anything but a PROXY header is a probe all the same.
    mutating func clientReadFailed(_ error: SystemCallError) -> Action {
        guard case .admitting(let admitting) = state else { return .wait }
        let probe = error.errno == ECONNRESET && (admitting.received?.readableBytes ?? 0) == 0
        return fail(.clientClosedEarly, detail: error.described(by: "client"), quiet: probe)
    }

    /// The ClientHello was routed: connect to the first of `route.servers`, then send `greeting`.
    mutating func routed(_ route: Route, greeting: ByteBuffer, now: NIODeadline) -> Action {
        guard case .admitting(let admitting) = state, !route.servers.isEmpty else { return fail(.noRoute, detail: nil) }
        // The client's side goes on as the direction toward the upstream: what it reported and did not read
        // yet is read once the greeting is out; a FIN already read is passed on then.
        var toUpstream = admitting.fromClient
        toUpstream.awaitDestination()
        state = .connecting(Connecting(route: route, deadline: now + route.connectTimeout, greeting: greeting, toUpstream: toUpstream))
        return .connect(route.servers[0])
    }

    mutating func notRouted() -> Action {
        fail(.noRoute, detail: nil)
    }

    /// The client's address is refused by an allow or deny list (`reason` names the entry); an http client
    /// is told 403.
    mutating func denied(_ reason: String, http: Bool = false) -> Action {
        fail(.denied, detail: reason, response: http ? HTTPAnswer.status(403) : nil)
    }

    /// The client's source is over a per-source limit (`limit`: `connections` or `rate`): closed, and logged
    /// at debug level only (the warning about the source says it once a minute); an http client is told 429.
    mutating func overSourceLimit(_ limit: String, http: Bool = false) -> Action {
        fail(.overSourceLimit, detail: limit, quiet: true, response: http ? HTTPAnswer.status(429) : nil)
    }

    /// An http listener answers the request itself (a redirect, or 404 for a Host without a route).
    mutating func answered(_ outcome: ConnectionOutcome, detail: String?, response: [UInt8]) -> Action {
        fail(outcome, detail: detail, response: response)
    }
}

extension SessionStateMachine {
    // MARK: - Connect results

    /// The connect to the current server is under way (it ends with an upstream event).
    mutating func connectStarted(now: NIODeadline) -> Action {
        guard case .connecting(let connecting) = state else { return .wait }
        connecting.deadline = now + connecting.route.connectTimeout
        return .wait
    }

    /// The current attempt failed (`reason` as logged): the next server, or the end when none is left.
    mutating func connectFailed(reason: String, now: NIODeadline) -> Action {
        guard case .connecting(let connecting) = state else { return .wait }
        let server = connecting.route.servers[connecting.attempt]
        connecting.attempt += 1
        guard connecting.attempt < connecting.route.servers.count else {
            return fail(.upstreamUnavailable, detail: "\(server.endpointDescription): \(reason)")
        }
        connecting.deadline = now + connecting.route.connectTimeout
        return .connect(connecting.route.servers[connecting.attempt])
    }

    /// The socket's pending error, read after an event with EPOLLHUP or EPOLLERR (0: none).
    mutating func socketError(_ side: Side, _ error: CInt) -> Action {
        switch state {
        case .connecting(let connecting):
            if side == .upstream {
                let failure = SystemCallError("connect", errno: error != 0 ? error : ECONNREFUSED)
                return .abandonAttempt(connecting.route.servers[connecting.attempt], reason: failure.description)
            }
            return clientFailedWhileConnecting(error)
        case .greeting:
            return side == .client ? clientFailedWhileConnecting(error) : .wait
        case .relaying(let relaying):
            relaying.hangUp = nil
            // A reset: what is still to be sent to this peer can no longer arrive.
            let unfinished = side == .client ? !relaying.toClient.isFinished : !relaying.toUpstream.isFinished
            if error != 0, unfinished {
                let detail = SystemCallError("socket", errno: error).described(by: side == .client ? "client" : "upstream")
                let outcome = Self.peerFailure(error, eitherFinished: relaying.toClient.isFinished || relaying.toUpstream.isFinished)
                return fail(outcome, detail: detail)
            }
            return afterPump(relaying)
        case .admitting, .closed:
            return .wait
        }
    }

    private mutating func clientFailedWhileConnecting(_ error: CInt) -> Action {
        let failure = SystemCallError("socket", errno: error != 0 ? error : ECONNRESET)
        return fail(.reset, detail: "client: \(failure) while connecting")
    }

    // MARK: - Greeting results

    /// The connect succeeded and was counted: the greeting goes out.
    mutating func greetingReady() -> Action {
        guard case .greeting(let greeting) = state else { return .wait }
        return .sendGreeting(greeting.greeting)
    }

    /// `count` greeting bytes were written (0: the socket's buffer is full; wait for EPOLLOUT).
    mutating func greetingSent(_ count: Int, now: NIODeadline) -> Action {
        guard case .greeting(let greeting) = state else { return .wait }
        greeting.greeting.moveReaderIndex(forwardBy: count)
        guard greeting.greeting.readableBytes == 0 else {
            if count == 0 { greeting.toUpstream.awaitDestination() }
            return count == 0 ? .wait : .sendGreeting(greeting.greeting)
        }
        state = .relaying(Relaying(
            idleTimeout: greeting.route.idleTimeout, lastActivity: greeting.lastActivity,
            toUpstream: greeting.toUpstream, toClient: greeting.toClient
        ))
        return .pump
    }

    mutating func greetingFailed(_ error: SystemCallError) -> Action {
        fail(.error, detail: error.described(by: "upstream"))
    }

    // MARK: - Relaying

    /// Runs `pumps` over both directions (toward the upstream, then toward the client) and decides what
    /// follows. A failure is returned by the pumps, not acted on while they hold the directions.
    mutating func pump(now: NIODeadline, _ pumps: (inout RelayDirection, inout RelayDirection) -> PumpReport) -> Action {
        guard case .relaying(let relaying) = state else { return .wait }
        relaying.toUpstream.beginPump()
        relaying.toClient.beginPump()
        let report = pumps(&relaying.toUpstream, &relaying.toClient)
        if report.moved { relaying.lastActivity = now }
        relaying.cutShort = relaying.toUpstream.yielded || relaying.toClient.yielded
        if let failure = report.failure {
            let eitherFinished = relaying.toClient.isFinished || relaying.toUpstream.isFinished
            return fail(failure.errno.map { Self.peerFailure($0, eitherFinished: eitherFinished) } ?? .error, detail: failure.detail)
        }
        if relaying.toUpstream.isFinished, relaying.toClient.isFinished {
            return fail(.closed, detail: nil)
        }
        if let side = relaying.hangUp {
            return .fetchError(side)
        }
        return afterPump(relaying)
    }

    /// Once the pumps ran and no hang-up is pending: watch the client's output if a write to it waits,
    /// and come back at once if a pump yielded.
    private func afterPump(_ relaying: Relaying) -> Action {
        if relaying.toClient.destinationFull, !relaying.clientWatchesOutput {
            return .watchClientOutput
        }
        return relaying.cutShort ? .resumeLater : .wait
    }

    /// The client socket is now watched for EPOLLOUT.
    mutating func watchingClientOutput() -> Action {
        guard case .relaying(let relaying) = state else { return .wait }
        relaying.clientWatchesOutput = true
        return afterPump(relaying)
    }
}
