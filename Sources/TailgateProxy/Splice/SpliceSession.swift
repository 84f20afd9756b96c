import CTailgateLinux
import Glibc
import NIOCore
import TailgateSystem

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
    /// Tells this session's epoll events from those of an earlier user of the same descriptor (31 bits of
    /// the session id; see `SpliceLoop.listenerBit`).
    let tag: UInt64
    let client: CInt
    var upstream: CInt = -1
    /// Set once routed.
    var pool: UpstreamPool?
    var servers: [SocketAddress] = []
    let registry: ConnectionRegistry
    var stage = Stage.admitting
    /// While admitting: the listener's policy, the decision so far, the bytes received and the deadline.
    var policy: ListenerPolicy?
    var machine: AdmissionStateMachine?
    var inbound: ByteBuffer?
    var helloDeadline = NIODeadline.uptimeNanoseconds(0)
    /// The listening socket's address when it is a specific one (the PROXY header's destination then needs
    /// no getsockname); nil for a wildcard bind.
    var localAddress: SocketAddress?
    var attempt = 0
    var connectStarted = NIODeadline.uptimeNanoseconds(0)
    var connectDeadline = NIODeadline.uptimeNanoseconds(0)
    /// The PROXY header and the bytes read while admitting, until written to the server.
    var greeting = ByteBuffer()
    var toUpstream = SpliceDirection()
    var toClient = SpliceDirection()
    /// The client socket is registered for EPOLLOUT too (only once a write to it had to wait; the upstream
    /// socket always is, from its connect on).
    var clientWatchesOutput = false
    /// A pump stopped at its round limit with bytes still to read: the loop comes back without an event.
    var postedAgain = false
    /// Times are the loop's clock (read once per turn of the loop, as nginx does).
    var lastActivity = NIODeadline.uptimeNanoseconds(0)

    /// A connection the engine accepted itself: admission (PROXY header, ClientHello, route) happens here too.
    init(accepted descriptor: CInt, record: ConnectionRecord, policy: ListenerPolicy, registry: ConnectionRegistry, connection: SpliceConnection) {
        self.record = record
        self.connection = connection
        self.tag = connection.id & 0x7FFF_FFFF
        self.client = descriptor
        self.registry = registry
        self.policy = policy
        self.stage = .admitting
        self.machine = AdmissionStateMachine(expectProxyHeader: policy.trusts(record.peer))
    }

    /// Dispatches one edge-triggered epoll event for `descriptor`: notes what became ready, then acts on it.
    func handle(_ events: UInt32, on descriptor: CInt, loop: SpliceLoop) {
        let fromClient = descriptor == client
        noteReadiness(events, fromClient: fromClient)
        switch stage {
        case .admitting:
            readAdmission(loop: loop)
        case .connecting, .greeting:
            if fromClient {
                // Not reading the client yet, but a reset or hang-up ends it now rather than when the
                // upstream answers.
                if events & UInt32(TAILGATE_EPOLLERR | TAILGATE_EPOLLHUP) != 0 {
                    let error = pendingSocketError(client)
                    fail(.reset, detail: "client: \(SystemCallError("socket", errno: error != 0 ? error : ECONNRESET)) while connecting", loop: loop)
                }
            } else if stage == .connecting {
                if events & UInt32(TAILGATE_EPOLLOUT | TAILGATE_EPOLLERR | TAILGATE_EPOLLHUP) != 0 { finishConnect(events, loop: loop) }
            } else if !toUpstream.waitingForDestination {
                sendGreeting(loop: loop)
            }
        case .relaying:
            relay(hangUp: events & UInt32(TAILGATE_EPOLLHUP | TAILGATE_EPOLLERR) != 0 ? descriptor : nil, loop: loop)
        case .closed:
            break
        }
    }

    /// Edge-triggered epoll reports a change once, so what it said is kept until a read or write finds out
    /// otherwise. Each flag belongs to one direction: the client's input to `toUpstream`, its output to `toClient`.
    private func noteReadiness(_ events: UInt32, fromClient: Bool) {
        let input = events & UInt32(TAILGATE_EPOLLIN | TAILGATE_EPOLLRDHUP | TAILGATE_EPOLLHUP | TAILGATE_EPOLLERR) != 0
        let peerClosed = events & UInt32(TAILGATE_EPOLLRDHUP | TAILGATE_EPOLLHUP) != 0
        let output = events & UInt32(TAILGATE_EPOLLOUT | TAILGATE_EPOLLHUP | TAILGATE_EPOLLERR) != 0
        if fromClient {
            if input { toUpstream.sourceReadable = true }
            if peerClosed { toUpstream.sourcePeerClosed = true }
            if output { toClient.waitingForDestination = false }
        } else {
            if input { toClient.sourceReadable = true }
            if peerClosed { toClient.sourcePeerClosed = true }
            if output { toUpstream.waitingForDestination = false }
        }
    }

    /// Comes back to a session whose pump stopped at its round limit (see `postedAgain`).
    func resume(loop: SpliceLoop) {
        postedAgain = false
        if stage == .relaying { relay(hangUp: nil, loop: loop) }
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

    /// Moves what is ready both ways; `hangUp` is the descriptor whose event carried EPOLLHUP/EPOLLERR.
    func relay(hangUp: CInt?, loop: SpliceLoop) {
        // Read (and pass on) whatever arrived before looking at errors: a server may answer and then reset.
        // The pumps only report failures; the session is failed here, once no direction is borrowed.
        var failure = pump(&toUpstream, from: client, to: upstream, otherFinished: toClient.finished, loop: loop)
        if failure == nil { failure = pump(&toClient, from: upstream, to: client, otherFinished: toUpstream.finished, loop: loop) }
        if let failure {
            fail(failure.errno.map(peerFailure) ?? .error, detail: failure.detail, loop: loop)
            return
        }
        if toUpstream.finished, toClient.finished {
            close(loop: loop)
            return
        }
        if let descriptor = hangUp {
            let fromClient = descriptor == client
            let error = pendingSocketError(descriptor)
            if error != 0, fromClient ? !toClient.finished : !toUpstream.finished {
                // Reset: what is still to be sent to this peer can no longer arrive.
                let detail = SystemCallError("socket", errno: error).described(by: fromClient ? "client" : "upstream")
                fail(peerFailure(error), detail: detail, loop: loop)
                return
            }
        }
        if toClient.waitingForDestination, !clientWatchesOutput {
            clientWatchesOutput = true
            loop.rewatch(client, events: SpliceLoop.clientEventsWithOutput, for: self)
        }
        if !postedAgain, toUpstream.cutShort || toClient.cutShort {
            postedAgain = true
            loop.postAgain(self)
        }
    }

    /// Why a pump could not go on: the failed call's errno (nil when it is not a peer's doing) and the log reason.
    struct PumpFailure {
        let errno: CInt?
        let detail: String
    }

    /// Moves what `source` has to `destination`; a failure is returned, not acted on (the caller holds
    /// `direction` borrowed from this session).
    ///
    /// Small exchanges are copied through the thread's scratch buffer (one recv, one send: cheaper than two
    /// splices for a few hundred bytes); once a read fills the buffer, the direction carries bulk and
    /// switches to splice(2) through a pipe, where the bytes stay in the kernel (HAProxy's splice-auto idea).
    private func pump(
        _ direction: inout SpliceDirection, from source: CInt, to destination: CInt, otherFinished: Bool, loop: SpliceLoop
    ) -> PumpFailure? {
        let towardUpstream = source == client
        direction.cutShort = false
        if let failure = flushHeld(&direction, to: destination, towardUpstream: towardUpstream, loop: loop) { return failure }
        var rounds = 0
        while direction.wantsRead, direction.sourceReadable {
            // A bounded share per turn, so one busy connection cannot starve the others; the loop comes back.
            guard rounds < 4 else {
                direction.cutShort = true
                break
            }
            rounds += 1
            let step = direction.spliced
                ? spliceOnce(&direction, from: source, to: destination, towardUpstream: towardUpstream, loop: loop)
                : copyOnce(&direction, from: source, to: destination, towardUpstream: towardUpstream, loop: loop)
            if let failure = step { return failure }
        }
        if direction.pending == 0, let pipe = direction.pipe {
            loop.pipes.give(pipe)
            direction.pipe = nil
        }
        if direction.sourceEnded, direction.pending == 0, direction.held.isEmpty, !direction.finished {
            direction.finished = true
            // Pass the FIN on; when the other way is done too, the close that follows sends it.
            if !otherFinished { shutdown(destination, CInt(SHUT_WR)) }
        }
        return nil
    }

    /// Writes what an earlier partial write left (copy remainder or pipe contents).
    private func flushHeld(_ direction: inout SpliceDirection, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop) -> PumpFailure? {
        guard !direction.waitingForDestination else { return nil }
        if !direction.held.isEmpty {
            let sent = direction.held.withUnsafeBytes { send(destination, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
            if sent > 0 {
                direction.held.removeFirst(sent)
            } else if errno != EAGAIN {
                return writeFailure(towardUpstream: towardUpstream, call: "send")
            }
        }
        if direction.pending > 0, let pipe = direction.pipe {
            let sent = tailgate_splice(pipe.readEnd, destination, direction.pending)
            if sent > 0 {
                direction.pending -= sent
            } else if errno != EAGAIN {
                return writeFailure(towardUpstream: towardUpstream, call: "splice")
            }
        }
        direction.waitingForDestination = !direction.held.isEmpty || direction.pending > 0
        return nil
    }

    /// One recv into the scratch buffer and one send; nil when it went through (or would block).
    private func copyOnce(
        _ direction: inout SpliceDirection, from source: CInt, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop
    ) -> PumpFailure? {
        let scratch = loop.scratch
        let received = recv(source, scratch.baseAddress, scratch.count, 0)
        guard received > 0 else { return endOfRead(received, &direction, towardUpstream: towardUpstream, call: "recv") }
        noteRead(received, towardUpstream: towardUpstream, loop: loop)
        if received < scratch.count {
            // TCP's recv returns less than asked only with the receive queue empty: nothing more until the
            // next edge. If the peer's FIN had already arrived, this was the last of it (saves the recv of 0).
            direction.sourceReadable = false
            if direction.sourcePeerClosed { direction.sourceEnded = true }
        } else {
            direction.spliced = true  // a full buffer: bulk, from now on through a pipe
        }
        let sent = send(destination, scratch.baseAddress, received, CInt(MSG_NOSIGNAL))
        if sent < 0, errno != EAGAIN {
            return writeFailure(towardUpstream: towardUpstream, call: "send")
        }
        let written = max(0, sent)
        if written < received {
            direction.held = Array(UnsafeRawBufferPointer(rebasing: scratch[written..<received]))
            direction.waitingForDestination = true
        }
        return nil
    }

    /// One splice from the source into the pipe and one out of it; nil when it went through (or would block).
    /// A short splice says nothing about the socket (the pipe may have run out of slots): only EAGAIN ends
    /// its readiness.
    private func spliceOnce(
        _ direction: inout SpliceDirection, from source: CInt, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop
    ) -> PumpFailure? {
        if direction.pipe == nil {
            guard let pipe = loop.pipes.take() else {
                return PumpFailure(errno: nil, detail: SystemCallError("pipe2").description)
            }
            direction.pipe = pipe
        }
        let pipe = direction.pipe!  // set just above
        let room = SplicePipePool.chunk - direction.pending
        // A full pipe waits for the destination; asking splice for 0 bytes would read as end of stream.
        guard room > 0 else {
            direction.waitingForDestination = true
            return nil
        }
        let moved = tailgate_splice(source, pipe.writeEnd, room)
        guard moved > 0 else { return endOfRead(moved, &direction, towardUpstream: towardUpstream, call: "splice") }
        direction.pending += moved
        noteRead(moved, towardUpstream: towardUpstream, loop: loop)
        let sent = tailgate_splice(pipe.readEnd, destination, direction.pending)
        if sent > 0 {
            direction.pending -= sent
        } else if errno != EAGAIN {
            return writeFailure(towardUpstream: towardUpstream, call: "splice")
        }
        if direction.pending > 0 {
            direction.waitingForDestination = true
        }
        return nil
    }

    /// A read that returned 0 (the peer's FIN) or failed.
    private func endOfRead(_ result: Int, _ direction: inout SpliceDirection, towardUpstream: Bool, call: String) -> PumpFailure? {
        if result == 0 {
            direction.sourceEnded = true
            return nil
        }
        let error = errno
        if error == EAGAIN {
            direction.sourceReadable = false
            return nil
        }
        return PumpFailure(errno: error, detail: SystemCallError(call, errno: error).described(by: towardUpstream ? "client" : "upstream"))
    }

    private func writeFailure(towardUpstream: Bool, call: String) -> PumpFailure {
        let error = errno
        return PumpFailure(errno: error, detail: SystemCallError(call, errno: error).described(by: towardUpstream ? "upstream" : "client"))
    }

    private func noteRead(_ count: Int, towardUpstream: Bool, loop: SpliceLoop) {
        if towardUpstream { record.bytesFromClient += count } else { record.bytesFromServer += count }
        lastActivity = loop.now
    }

    /// A peer that resets or vanishes ends the connection as `reset`, or as `closed` once one side had already
    /// finished (a client that closes without reading the server's close_notify resets; that is a normal end);
    /// anything else is an `error`.
    func peerFailure(_ error: CInt) -> ConnectionOutcome {
        guard error == ECONNRESET || error == EPIPE else { return .error }
        return toUpstream.finished || toClient.finished ? .closed : .reset
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
        returnPipe(of: &toUpstream, loop: loop)
        returnPipe(of: &toClient, loop: loop)
        loop.sessionClosed(self)
        registry.remove(connection)
        record.finish()
    }

    /// Gives a direction's pipe back to the pool, or closes it when bytes are still in it.
    private func returnPipe(of direction: inout SpliceDirection, loop: SpliceLoop) {
        guard let pipe = direction.pipe else { return }
        if direction.pending == 0 { loop.pipes.give(pipe) } else { pipe.close() }
        direction.pipe = nil
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
    /// Epoll reported input (or a hang-up) on the source that a read has not used up yet.
    var sourceReadable = false
    /// Epoll reported the source's FIN (EPOLLRDHUP): once a read comes back short, the stream has ended.
    var sourcePeerClosed = false
    /// The pump stopped at its round limit with the source still readable.
    var cutShort = false
    /// What a partial copy-mode write left over (at most one scratch buffer).
    var held: [UInt8] = []
    /// Carries bulk: bytes go through a pipe with splice(2) instead of being copied.
    var spliced = false

    var wantsRead: Bool { !sourceEnded && !waitingForDestination }
}
