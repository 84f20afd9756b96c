import CTailgateLinux
import Glibc
import NIOCore
import TailgateConfig
import TailgateSystem
import TailgateWire

/// One relayed connection on a relay thread: the I/O layer of its `SessionStateMachine`. It turns epoll
/// events and timer passes into the machine's events, performs the actions the machine answers with (a
/// system call or two each), and feeds each result back, until the machine says to wait.
final class SpliceSession {
    typealias Action = SessionStateMachine.Action

    let record: ConnectionRecord
    let connection: SpliceConnection
    /// Tells this session's epoll events from those of an earlier user of the same descriptor (31 bits of
    /// the session id; see `SpliceLoop.listenerBit`).
    let tag: UInt64
    let client: CInt
    private(set) var upstream: CInt = -1
    private(set) var machine: SessionStateMachine
    /// The listener's policy as of the accept; given up once the connection is routed.
    private var policy: ListenerPolicy?
    /// The routed upstream.
    private var pool: UpstreamPool?
    private let registry: ConnectionRegistry
    /// The listening socket's address when it is a specific one (the PROXY header's destination then needs
    /// no getsockname); nil for a wildcard bind.
    private let localAddress: SocketAddress?
    /// Queued on the loop to be served again after this turn (see `SessionStateMachine.Action.resumeLater`).
    var postedAgain = false
    /// An http listener's connection ends when the server's response has gone out and the client has
    /// nothing more queued (see `SpliceSession+Pump`).
    let endsWithResponse: Bool
    /// The response went out and the client was quiet: the connection closes without waiting for its FIN.
    var responseDelivered = false
    private var connectStarted = NIODeadline.uptimeNanoseconds(0)

    /// A connection the relay thread accepted: admission (PROXY header, ClientHello, route) happens here too.
    init(
        accepted descriptor: CInt, record: ConnectionRecord, policy: ListenerPolicy, registry: ConnectionRegistry,
        connection: SpliceConnection, localAddress: SocketAddress?, now: NIODeadline
    ) {
        self.record = record
        self.connection = connection
        self.tag = connection.id & 0x7FFF_FFFF
        self.client = descriptor
        self.registry = registry
        self.policy = policy
        self.localAddress = localAddress
        self.endsWithResponse = policy.isHTTP
        self.machine = SessionStateMachine(
            expectProxyHeader: policy.trusts(record.peer), plainTCP: policy.isPlainTCP, http: policy.isHTTP,
            helloDeadline: now + policy.clientHelloTimeout
        )
    }

    // MARK: - Events

    /// Watches the client socket for its first bytes. Reading comes with the socket's first event, not right
    /// after accept: the connection is accepted on the client's last handshake segment and its ClientHello
    /// is a separate one. Bytes that did arrive first are not missed: registering a socket that is already
    /// readable queues its event, edge-triggered or not.
    func start(loop: SpliceLoop) {
        if !loop.watch(client, events: SpliceLoop.clientEvents, for: self) {
            fail(.error, detail: "client: \(SystemCallError("epoll_ctl"))", loop: loop)
            return
        }
        perform(machine.accepted(), loop: loop)
    }

    /// Ends the connection for a failure of the I/O layer's own (epoll_ctl on a hand-over).
    func fail(_ outcome: ConnectionOutcome, detail: String, loop: SpliceLoop) {
        perform(machine.fail(outcome, detail: detail), loop: loop)
    }

    /// One edge-triggered epoll event for `descriptor`.
    func handle(_ events: EpollEvents, on descriptor: CInt, loop: SpliceLoop) {
        let action = descriptor == client ? machine.clientEvent(events, now: loop.now) : machine.upstreamEvent(events, now: loop.now)
        perform(action, loop: loop)
    }

    /// Comes back to a session whose pump stopped at its round limit, or that was handed to this thread.
    func resume(loop: SpliceLoop) {
        postedAgain = false
        perform(machine.resumed(), loop: loop)
    }

    /// Deadlines and the idle timeout.
    func checkTimers(loop: SpliceLoop) {
        perform(machine.timer(now: loop.now), loop: loop)
    }

    /// The drain deadline passed, or the thread stops.
    func closeAtDrainDeadline(loop: SpliceLoop) {
        perform(machine.drainDeadline(), loop: loop)
    }

    // MARK: - Actions

    /// Carries out `first` and whatever the machine answers to each result, until it says to wait.
    private func perform(_ first: Action, loop: SpliceLoop) {
        var action = first
        while true {
            switch action {
            case .wait:
                return
            case .receiveFromClient:
                action = receiveFromClient(loop: loop)
            case .route(let hello, let received):
                action = route(hello, received: received, loop: loop)
            case .routeRequest(let head, let received):
                action = routeRequest(head, received: received, loop: loop)
            case .connect(let server):
                action = connect(to: server, loop: loop)
            case .abandonAttempt(let server, let reason):
                closeUpstream(loop: loop)
                action = noteConnectFailure(server, reason, loop: loop)
            case .fetchError(let side):
                action = machine.socketError(side, OutgoingConnection.pendingError(side == .client ? client : upstream))
            case .connected(let server):
                noteConnected(server, loop: loop)
                action = machine.greetingReady()
            case .sendGreeting(let bytes):
                action = sendGreeting(bytes, loop: loop)
            case .pump:
                action = machine.pump(now: loop.now) { toUpstream, toClient in
                    pumpBoth(&toUpstream, &toClient, loop: loop)
                }
            case .watchClientOutput:
                loop.rewatch(client, events: SpliceLoop.clientEventsWithOutput, for: self)
                action = machine.watchingClientOutput()
            case .resumeLater:
                if !postedAgain {
                    postedAgain = true
                    loop.postAgain(self)
                }
                return
            case .close(let closing):
                close(closing, loop: loop)
                return
            }
        }
    }

    private func receiveFromClient(loop: SpliceLoop) -> Action {
        let scratch = loop.scratch
        let received = tailgate_recv(client, scratch.baseAddress, scratch.count, 0)
        if received > 0 {
            record.bytesFromClient += received
            let action = machine.received(UnsafeRawBufferPointer(rebasing: scratch[0..<received]), capacity: scratch.count)
            record.adoptSource(of: machine.proxyHeader)
            return action
        }
        if received == 0 { return machine.clientEnded() }
        let error = SystemCallError("recv")
        return error.errno == EAGAIN ? machine.clientReadWouldBlock() : machine.clientReadFailed(error)
    }

    /// Routes the ClientHello and prepares the greeting: the PROXY header (when the upstream wants one)
    /// and the bytes read so far.
    private func route(_ hello: ClientHelloInfo, received: ByteBuffer, loop: SpliceLoop) -> Action {
        guard let policy else { return machine.notRouted() }
        if let refused = judgeSourceAfterHeader(policy, loop: loop) { return refused }
        guard let pool = policy.route(hello, record: record) else { return machine.notRouted() }
        // Judged on the client's address: the trusted PROXY header's source when there was one.
        if let refusal = policy.refusal(record.client, route: record.route) {
            record.listener.countDenied()
            return machine.denied(refusal)
        }
        return connect(to: pool, policy: policy, received: received, loop: loop)
    }

    /// Routes an HTTP request by its Host: to the route's upstream, or answered here with a redirect to https
    /// (ACME HTTP-01 challenges excepted), 403 for a refused client, 404 for a Host without a route.
    private func routeRequest(_ head: HTTPRequestHead, received: ByteBuffer, loop: SpliceLoop) -> Action {
        guard let policy else { return machine.notRouted() }
        if let refused = judgeSourceAfterHeader(policy, loop: loop, http: true) { return refused }
        let (match, pool) = policy.route(request: head, record: record)
        if let refusal = policy.refusal(record.client, route: record.route) {
            record.listener.countDenied()
            return machine.denied(refusal, http: true)
        }
        if !policy.redirectsToHTTPS.isEmpty, policy.redirectsToHTTPS.contains(record.route ?? ""),
           !(pool != nil && head.pathAndQuery.hasPrefix("/.well-known/acme-challenge/")) {
            guard let host = head.host else { return machine.answered(.badRequest, detail: "missing_host", response: HTTPAnswer.status(400)) }
            let location = "https://\(host)\(head.pathAndQuery)"
            let (status, bytes) = HTTPAnswer.redirect(to: location, method: head.method)
            return machine.answered(.redirected, detail: "\(status) \(location)", response: bytes)
        }
        guard let pool else {
            return machine.answered(.noRoute, detail: match == .none ? nil : "upstream", response: HTTPAnswer.status(404))
        }
        return connect(to: pool, policy: policy, received: received, loop: loop)
    }

    /// A trusted peer's client, named by its PROXY header, against the listener's per-source limits: nil when
    /// let in (counted until the connection ends), else the close (an http client is told 429). A LOCAL header
    /// (the peer's own health check) is not judged.
    private func judgeSourceAfterHeader(_ policy: ListenerPolicy, loop: SpliceLoop, http: Bool = false) -> Action? {
        if record.client != record.peer, let board = record.listener.banBoard, let client = record.client.flatMap(IPAddress.init),
           board.isBanned(client) {
            return machine.fail(.banned, detail: nil, quiet: true, response: http ? HTTPAnswer.status(403) : nil)
        }
        guard let tracker = record.sourceTracker, record.sourceCount == nil, record.client != record.peer else { return nil }
        record.sourceTracker = nil
        let judgement = record.listener.judgeSource(
            record.client, limits: policy.sourceLimits, tracker: tracker, now: loop.now, logger: record.logger, beforeRoute: false
        )
        switch judgement {
        case .admitted(let counted):
            record.sourceCount = counted
            return nil
        case .refused(let limit):
            return machine.overSourceLimit(limit, http: http)
        }
    }

    /// Prepares the greeting (the PROXY header when the upstream wants one, then the bytes read so far) and
    /// starts connecting to the routed upstream.
    private func connect(to pool: UpstreamPool, policy: ListenerPolicy, received: ByteBuffer, loop: SpliceLoop) -> Action {
        self.pool = pool
        self.policy = nil
        let servers = policy.servers(of: pool, record: record)
        var greeting = received
        if pool.sendProxy != .none {
            greeting = ByteBufferAllocator().buffer(capacity: received.readableBytes + 256)
            ListenerPolicy.writeProxyHeader(
                pool.sendProxy, peer: record.peer, local: localAddress ?? (try? ListeningSocket.localAddress(of: client)),
                inbound: machine.proxyHeader, authority: record.serverName, into: &greeting
            )
            greeting.writeImmutableBuffer(received)
        }
        let route = SessionStateMachine.Route(servers: servers, connectTimeout: pool.connectTimeout, idleTimeout: pool.idleTimeout)
        return machine.routed(route, greeting: greeting, now: loop.now)
    }

    /// Opens a socket to `server` and starts the connect; it finishes with the socket's first event.
    private func connect(to server: SocketAddress, loop: SpliceLoop) -> Action {
        record.server = server
        connectStarted = loop.now
        do throws(SystemCallError) {
            let (descriptor, _) = try OutgoingConnection.start(to: server)
            upstream = descriptor
            guard loop.watch(descriptor, events: SpliceLoop.upstreamEvents, for: self) else {
                return machine.fail(.error, detail: "upstream: \(SystemCallError("epoll_ctl"))")
            }
            return machine.connectStarted(now: loop.now)
        } catch {
            return noteConnectFailure(server, error.description, loop: loop)
        }
    }

    private func closeUpstream(loop: SpliceLoop) {
        guard upstream >= 0 else { return }
        loop.forget(upstream)
        tailgate_close(upstream)
        upstream = -1
    }

    private func noteConnectFailure(_ server: SocketAddress, _ reason: String, loop: SpliceLoop) -> Action {
        guard let pool else { return machine.fail(.upstreamUnavailable, detail: reason) }
        pool.connectFailed(server, reason: reason, logger: record.logger)
        if machine.attempt?.hasNext == true {
            record.logger.debug("upstream server failed, trying the next", metadata: [
                "upstream": .string(pool.name), "server": .string(server.endpointDescription), "error": .string(reason),
            ])
        }
        return machine.connectFailed(reason: reason, now: loop.now)
    }

    private func noteConnected(_ server: SocketAddress, loop: SpliceLoop) {
        guard let pool else { return }
        pool.connectHistogram.record(.nanoseconds((loop.now - connectStarted).nanoseconds))
        pool.connectSucceeded(server)
        pool.usage.acquire(server)
        record.connectedServer = (server, pool.usage)
    }

    private func sendGreeting(_ bytes: ByteBuffer, loop: SpliceLoop) -> Action {
        let written = bytes.withUnsafeReadableBytes { tailgate_send(upstream, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
        if written >= 0 { return machine.greetingSent(written, now: loop.now) }
        let error = SystemCallError("write")
        return error.errno == EAGAIN ? machine.greetingSent(0, now: loop.now) : machine.greetingFailed(error)
    }

    /// Closes both sockets, returns or closes the pipes, and writes the connection's log line.
    private func close(_ closing: SessionStateMachine.Closing, loop: SpliceLoop) {
        if closing.quiet { record.quiet = true }
        if let response = closing.response { answer(response) }
        record.adoptSource(of: closing.proxyHeader)
        record.end(closing.outcome, detail: closing.detail)
        loop.forget(client)
        tailgate_close(client)
        closeUpstream(loop: loop)
        for (pipe, pending) in closing.pipes {
            // A pipe with bytes still in it cannot be reused.
            if pending == 0 { loop.pipes.give(pipe) } else { pipe.close() }
        }
        loop.sessionClosed(self)
        registry.remove(connection)
        record.finish()
    }
}

extension SpliceSession {
    /// Writes an http listener's own response and half-closes, then reads what the client had already sent
    /// (up to 64 KiB): closing with unread input would reset the connection, and the client could lose the
    /// response before reading it. One write: the response is small and the socket's buffer empty.
    fileprivate func answer(_ response: [UInt8]) {
        _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
        shutdown(client, CInt(SHUT_WR))
        var scratch = [UInt8](repeating: 0, count: 16_384)
        for _ in 0..<4 {
            guard scratch.withUnsafeMutableBytes({ recv(client, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }) > 0 else { break }
        }
    }
}

@available(*, unavailable)
extension SpliceSession: Sendable {}
