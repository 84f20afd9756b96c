import CTailgateLinux
import Glibc
import NIOCore

/// One relayed connection on a splice thread: connecting to a server of the upstream, sending the greeting
/// (PROXY header and ClientHello), then two directions spliced until both have finished.
final class SpliceSession {
    enum Stage {
        case admitting
        case connecting
        case greeting
        case relaying
        case closed
    }

    let record: ConnectionRecord
    let connection: SpliceConnection
    let client: CInt
    var upstream: CInt = -1
    /// Set once routed.
    var pool: UpstreamPool?
    var servers: [SocketAddress] = []
    let registry: ConnectionRegistry
    var stage = Stage.connecting
    /// While admitting: the listener's policy, the decision so far, the bytes received and the deadline.
    var policy: ListenerPolicy?
    var machine: AdmissionStateMachine?
    var inbound: ByteBuffer?
    var helloDeadline = NIODeadline.now()
    var attempt = 0
    var connectStarted = NIODeadline.now()
    var connectDeadline = NIODeadline.now()
    var greeting: [UInt8]
    var greetingSent = 0
    var toUpstream = SpliceDirection()
    var toClient = SpliceDirection()
    var clientEvents: UInt32 = 0
    var upstreamEvents: UInt32 = 0
    var lastActivity = NIODeadline.now()

    init(ticket: SpliceTicket, connection: SpliceConnection) {
        self.record = ticket.record
        self.connection = connection
        self.client = ticket.client
        self.pool = ticket.pool
        self.servers = ticket.servers
        self.greeting = ticket.greeting
        self.registry = ticket.registry
    }

    /// A connection the engine accepted itself: admission (PROXY header, ClientHello, route) happens here too.
    init(accepted descriptor: CInt, record: ConnectionRecord, policy: ListenerPolicy, registry: ConnectionRegistry, connection: SpliceConnection) {
        self.record = record
        self.connection = connection
        self.client = descriptor
        self.registry = registry
        self.greeting = []
        self.policy = policy
        self.stage = .admitting
        self.machine = AdmissionStateMachine(expectProxyHeader: policy.trusts(record.peer))
    }

    /// Registers the client socket (reporting nothing until relaying starts) and connects.
    func start(loop: SpliceLoop) {
        guard loop.watch(client, events: 0, for: self) else {
            fail(.error, detail: "client: \(SystemCallError("epoll_ctl"))", loop: loop)
            return
        }
        connectNext(loop: loop)
    }

    /// Dispatches one epoll event for `descriptor`.
    func handle(_ events: UInt32, on descriptor: CInt, loop: SpliceLoop) {
        switch stage {
        case .admitting:
            readAdmission(loop: loop)
        case .connecting:
            if descriptor == upstream { finishConnect(loop: loop) }
        case .greeting:
            if descriptor == upstream { sendGreeting(loop: loop) }
        case .relaying:
            relay(events, on: descriptor, loop: loop)
        case .closed:
            break
        }
    }

    /// Connect timeouts and the idle timeout.
    func checkTimers(now: NIODeadline, loop: SpliceLoop) {
        switch stage {
        case .admitting:
            if now >= helloDeadline {
                fail(.clientHelloTimeout, detail: machine?.timeoutReason, loop: loop)
            }
        case .connecting:
            if now >= connectDeadline, let pool {
                let limit = pool.connectTimeout.nanoseconds / 1_000_000
                connectFailed("connect timed out after \(limit) ms", loop: loop)
            }
        case .greeting, .relaying:
            if let pool, now - lastActivity >= pool.idleTimeout {
                fail(.idleTimeout, detail: nil, loop: loop)
            }
        case .closed:
            break
        }
    }

    // MARK: - Relaying

    private func relay(_ events: UInt32, on descriptor: CInt, loop: SpliceLoop) {
        let fromClient = descriptor == client
        if events & UInt32(TAILGATE_EPOLLERR) != 0 {
            let error = pendingSocketError(descriptor)
            if error != 0 {
                fail(peerFailure(error), detail: "\(fromClient ? "client" : "upstream"): \(SystemCallError("socket", errno: error))", loop: loop)
                return
            }
        }
        let readable = events & UInt32(TAILGATE_EPOLLIN | TAILGATE_EPOLLHUP | TAILGATE_EPOLLERR | TAILGATE_EPOLLRDHUP) != 0
        let writable = events & UInt32(TAILGATE_EPOLLOUT) != 0
        if fromClient {
            if readable, !pump(&toUpstream, from: client, to: upstream, loop: loop) { return }
            if writable {
                toClient.waitingForDestination = false
                if !pump(&toClient, from: upstream, to: client, loop: loop) { return }
            }
        } else {
            if readable, !pump(&toClient, from: upstream, to: client, loop: loop) { return }
            if writable {
                toUpstream.waitingForDestination = false
                if !pump(&toUpstream, from: client, to: upstream, loop: loop) { return }
            }
        }
        if toUpstream.finished, toClient.finished {
            close(loop: loop)
            return
        }
        updateEvents(loop: loop)
    }

    /// Moves what `source` has to `destination`. False when the session failed (and is closed).
    ///
    /// Small exchanges are copied through the thread's scratch buffer (one recv, one send: cheaper than two
    /// splices for a few hundred bytes); once a read fills the buffer, the direction carries bulk and
    /// switches to splice(2) through a pipe, where the bytes stay in the kernel (HAProxy's splice-auto idea).
    private func pump(_ direction: inout SpliceDirection, from source: CInt, to destination: CInt, loop: SpliceLoop) -> Bool {
        let towardUpstream = source == client
        guard flushHeld(&direction, to: destination, towardUpstream: towardUpstream, loop: loop) else { return false }
        var rounds = 0
        while direction.wantsRead, rounds < 4 {
            rounds += 1
            let outcome = direction.spliced
                ? spliceOnce(&direction, from: source, to: destination, towardUpstream: towardUpstream, loop: loop)
                : copyOnce(&direction, from: source, to: destination, towardUpstream: towardUpstream, loop: loop)
            switch outcome {
            case .failed: return false
            case .drained: rounds = .max
            case .more: continue
            }
        }
        if direction.pending == 0, let pipe = direction.pipe {
            loop.pipes.give(pipe)
            direction.pipe = nil
        }
        if direction.sourceEnded, direction.pending == 0, direction.held.isEmpty, !direction.finished {
            direction.finished = true
            shutdown(destination, CInt(SHUT_WR))
        }
        return true
    }

    private enum Step { case more, drained, failed }

    /// Writes what an earlier partial write left (copy remainder or pipe contents).
    private func flushHeld(_ direction: inout SpliceDirection, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop) -> Bool {
        if !direction.held.isEmpty {
            let sent = direction.held.withUnsafeBytes { send(destination, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
            if sent > 0 {
                direction.held.removeFirst(sent)
            } else if errno != EAGAIN {
                failWrite(towardUpstream: towardUpstream, call: "send", loop: loop)
                return false
            }
        }
        if direction.pending > 0, let pipe = direction.pipe {
            let sent = tailgate_splice(pipe.readEnd, destination, direction.pending)
            if sent > 0 {
                direction.pending -= sent
            } else if errno != EAGAIN {
                failWrite(towardUpstream: towardUpstream, call: "splice", loop: loop)
                return false
            }
        }
        direction.waitingForDestination = !direction.held.isEmpty || direction.pending > 0
        return true
    }

    private func copyOnce(
        _ direction: inout SpliceDirection, from source: CInt, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop
    ) -> Step {
        let scratch = loop.scratch
        let received = recv(source, scratch.baseAddress, scratch.count, 0)
        guard received > 0 else { return endOfRead(received, &direction, towardUpstream: towardUpstream, loop: loop) }
        noteRead(received, towardUpstream: towardUpstream)
        let sent = send(destination, scratch.baseAddress, received, CInt(MSG_NOSIGNAL))
        if sent < 0, errno != EAGAIN {
            failWrite(towardUpstream: towardUpstream, call: "send", loop: loop)
            return .failed
        }
        let written = max(0, sent)
        if written < received {
            direction.held = Array(UnsafeRawBufferPointer(rebasing: scratch[written..<received]))
            direction.waitingForDestination = true
            return .drained
        }
        if received == scratch.count {
            direction.spliced = true
            return .more
        }
        return .drained
    }

    private func spliceOnce(
        _ direction: inout SpliceDirection, from source: CInt, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop
    ) -> Step {
        if direction.pipe == nil {
            guard let pipe = loop.pipes.take() else {
                fail(.error, detail: SystemCallError("pipe2").description, loop: loop)
                return .failed
            }
            direction.pipe = pipe
        }
        let pipe = direction.pipe!  // set just above
        let room = SplicePipePool.chunk - direction.pending
        let moved = tailgate_splice(source, pipe.writeEnd, room)
        guard moved > 0 else { return endOfRead(moved, &direction, towardUpstream: towardUpstream, loop: loop) }
        direction.pending += moved
        noteRead(moved, towardUpstream: towardUpstream)
        let sent = tailgate_splice(pipe.readEnd, destination, direction.pending)
        if sent > 0 {
            direction.pending -= sent
        } else if errno != EAGAIN {
            failWrite(towardUpstream: towardUpstream, call: "splice", loop: loop)
            return .failed
        }
        if direction.pending > 0 {
            direction.waitingForDestination = true
            return .drained
        }
        return moved == room ? .more : .drained
    }

    /// A read that returned 0 (the peer's FIN) or failed.
    private func endOfRead(_ result: Int, _ direction: inout SpliceDirection, towardUpstream: Bool, loop: SpliceLoop) -> Step {
        if result == 0 {
            direction.sourceEnded = true
            return .drained
        }
        if errno == EAGAIN { return .drained }
        fail(peerFailure(errno), detail: "\(towardUpstream ? "client" : "upstream"): \(SystemCallError(direction.spliced ? "splice" : "recv"))", loop: loop)
        return .failed
    }

    private func failWrite(towardUpstream: Bool, call: String, loop: SpliceLoop) {
        let error = errno
        fail(peerFailure(error), detail: "\(towardUpstream ? "upstream" : "client"): \(SystemCallError(call, errno: error))", loop: loop)
    }

    private func noteRead(_ count: Int, towardUpstream: Bool) {
        if towardUpstream { record.bytesFromClient += count } else { record.bytesFromServer += count }
        lastActivity = .now()
    }

    /// A peer that resets or vanishes ends the connection as `reset`, or as `closed` once one side had already
    /// finished (a client that closes without reading the server's close_notify resets; that is a normal end);
    /// anything else is an `error`.
    func peerFailure(_ error: CInt) -> ConnectionOutcome {
        guard error == ECONNRESET || error == EPIPE else { return .error }
        return toUpstream.finished || toClient.finished ? .closed : .reset
    }

    /// Asks epoll for exactly what each socket waits on, so the level-triggered loop never spins.
    func updateEvents(loop: SpliceLoop) {
        let input = UInt32(TAILGATE_EPOLLIN)
        let output = UInt32(TAILGATE_EPOLLOUT)
        let wantedClient = (toUpstream.wantsRead ? input : 0) | (toClient.waitingForDestination ? output : 0)
        let wantedUpstream = (toClient.wantsRead ? input : 0) | (toUpstream.waitingForDestination ? output : 0)
        if wantedClient != clientEvents {
            clientEvents = wantedClient
            loop.rewatch(client, events: wantedClient)
        }
        if wantedUpstream != upstreamEvents {
            upstreamEvents = wantedUpstream
            loop.rewatch(upstream, events: wantedUpstream)
        }
    }

    // MARK: - Ending

    func fail(_ outcome: ConnectionOutcome, detail: String?, loop: SpliceLoop) {
        record.end(outcome, detail: detail)
        close(loop: loop)
    }

    /// Closes both sockets, returns or closes the pipes, and writes the connection's log line.
    func close(loop: SpliceLoop) {
        guard stage != .closed else { return }
        stage = .closed
        loop.forget(client)
        Glibc.close(client)
        if upstream >= 0 {
            loop.forget(upstream)
            Glibc.close(upstream)
        }
        for direction in [toUpstream, toClient] {
            guard let pipe = direction.pipe else { continue }
            if direction.pending == 0 { loop.pipes.give(pipe) } else { pipe.close() }
        }
        toUpstream.pipe = nil
        toClient.pipe = nil
        loop.sessionClosed(self)
        registry.remove(connection)
        record.finish()
    }

    func pendingSocketError(_ descriptor: CInt) -> CInt {
        var error: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
        return error
    }
}

@available(*, unavailable)
extension SpliceSession: Sendable {}

/// One direction of a relayed connection.
struct SpliceDirection {
    /// Held only while bytes are in flight.
    var pipe: SplicePipe?
    /// Bytes in the pipe not yet written to the destination.
    var pending = 0
    /// The source sent its FIN.
    var sourceEnded = false
    /// Our FIN has been passed on to the destination.
    var finished = false
    /// The destination's send buffer is full: wait for it to become writable before reading more.
    var waitingForDestination = false
    /// What a partial copy-mode write left over (at most one scratch buffer).
    var held: [UInt8] = []
    /// Carries bulk: bytes go through a pipe with splice(2) instead of being copied.
    var spliced = false

    var wantsRead: Bool { !sourceEnded && !waitingForDestination }
}
