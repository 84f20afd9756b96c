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
    var stage = Stage.admitting
    /// While admitting: the listener's policy, the decision so far, the bytes received and the deadline.
    var policy: ListenerPolicy?
    var machine: AdmissionStateMachine?
    var inbound: ByteBuffer?
    var helloDeadline = NIODeadline.now()
    /// The listening socket's address when it is a specific one (the PROXY header's destination then needs
    /// no getsockname); nil for a wildcard bind.
    var localAddress: SocketAddress?
    var attempt = 0
    var connectStarted = NIODeadline.now()
    var connectDeadline = NIODeadline.now()
    var greeting: [UInt8]
    var greetingSent = 0
    var toUpstream = SpliceDirection()
    var toClient = SpliceDirection()
    var clientEvents: UInt32 = 0
    var upstreamEvents: UInt32 = 0
    /// The peer hung up (EPOLLHUP/EPOLLERR); the socket is out of epoll (parked) while nothing is wanted from it.
    var clientHungUp = false
    var upstreamHungUp = false
    var clientParked = false
    var upstreamParked = false
    var lastActivity = NIODeadline.now()

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

    /// Dispatches one epoll event for `descriptor`.
    func handle(_ events: UInt32, on descriptor: CInt, loop: SpliceLoop) {
        switch stage {
        case .admitting:
            readAdmission(loop: loop)
        case .connecting, .greeting:
            if descriptor == client {
                // Not reading the client yet, but epoll reports a reset or hang-up regardless: end it now
                // rather than spin on it until the upstream answers.
                if events & UInt32(TAILGATE_EPOLLERR | TAILGATE_EPOLLHUP) != 0 {
                    let error = pendingSocketError(client)
                    fail(.reset, detail: "client: \(SystemCallError("socket", errno: error != 0 ? error : ECONNRESET)) while connecting", loop: loop)
                }
            } else if stage == .connecting {
                finishConnect(loop: loop)
            } else {
                sendGreeting(loop: loop)
            }
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
        let readable = events & UInt32(TAILGATE_EPOLLIN | TAILGATE_EPOLLHUP | TAILGATE_EPOLLERR | TAILGATE_EPOLLRDHUP) != 0
        let writable = events & UInt32(TAILGATE_EPOLLOUT) != 0
        // Read (and pass on) whatever arrived before looking at errors: a server may answer and then reset.
        // The pumps only report failures; the session is failed here, once no direction is borrowed.
        var failure: PumpFailure?
        if fromClient {
            if readable { failure = pump(&toUpstream, from: client, to: upstream, loop: loop) }
            if failure == nil, writable {
                toClient.waitingForDestination = false
                failure = pump(&toClient, from: upstream, to: client, loop: loop)
            }
        } else {
            if readable { failure = pump(&toClient, from: upstream, to: client, loop: loop) }
            if failure == nil, writable {
                toUpstream.waitingForDestination = false
                failure = pump(&toUpstream, from: client, to: upstream, loop: loop)
            }
        }
        if let failure {
            fail(failure.errno.map(peerFailure) ?? .error, detail: failure.detail, loop: loop)
            return
        }
        if toUpstream.finished, toClient.finished {
            close(loop: loop)
            return
        }
        // EPOLLHUP/EPOLLERR cannot be masked: a level-triggered loop would report them on every turn.
        let hangUp = events & UInt32(TAILGATE_EPOLLHUP | TAILGATE_EPOLLERR) != 0
        if hangUp {
            let error = pendingSocketError(descriptor)
            let outboundOpen = fromClient ? !toClient.finished : !toUpstream.finished
            if error != 0, outboundOpen {
                // Reset: what is still to be sent to this peer can no longer arrive.
                fail(peerFailure(error), detail: "\(fromClient ? "client" : "upstream"): \(SystemCallError("socket", errno: error))", loop: loop)
                return
            }
            // Closed both ways or reset after we finished sending: read what is left, but stop watching the
            // socket whenever there is nothing to read from it (updateEvents).
            if fromClient { clientHungUp = true } else { upstreamHungUp = true }
        }
        updateEvents(loop: loop)
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
    private func pump(_ direction: inout SpliceDirection, from source: CInt, to destination: CInt, loop: SpliceLoop) -> PumpFailure? {
        let towardUpstream = source == client
        if let failure = flushHeld(&direction, to: destination, towardUpstream: towardUpstream, loop: loop) { return failure }
        var rounds = 0
        while direction.wantsRead, rounds < 4 {
            rounds += 1
            let step = direction.spliced
                ? spliceOnce(&direction, from: source, to: destination, towardUpstream: towardUpstream, loop: loop)
                : copyOnce(&direction, from: source, to: destination, towardUpstream: towardUpstream, loop: loop)
            switch step {
            case .failed(let failure): return failure
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
        return nil
    }

    private enum Step {
        case more
        case drained
        case failed(PumpFailure)
    }

    /// Writes what an earlier partial write left (copy remainder or pipe contents).
    private func flushHeld(_ direction: inout SpliceDirection, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop) -> PumpFailure? {
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

    private func copyOnce(
        _ direction: inout SpliceDirection, from source: CInt, to destination: CInt, towardUpstream: Bool, loop: SpliceLoop
    ) -> Step {
        let scratch = loop.scratch
        let received = recv(source, scratch.baseAddress, scratch.count, 0)
        guard received > 0 else { return endOfRead(received, &direction, towardUpstream: towardUpstream, call: "recv") }
        noteRead(received, towardUpstream: towardUpstream)
        let sent = send(destination, scratch.baseAddress, received, CInt(MSG_NOSIGNAL))
        if sent < 0, errno != EAGAIN {
            return .failed(writeFailure(towardUpstream: towardUpstream, call: "send"))
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
                return .failed(PumpFailure(errno: nil, detail: SystemCallError("pipe2").description))
            }
            direction.pipe = pipe
        }
        let pipe = direction.pipe!  // set just above
        let room = SplicePipePool.chunk - direction.pending
        // A full pipe waits for the destination; asking splice for 0 bytes would read as end of stream.
        guard room > 0 else {
            direction.waitingForDestination = true
            return .drained
        }
        let moved = tailgate_splice(source, pipe.writeEnd, room)
        guard moved > 0 else { return endOfRead(moved, &direction, towardUpstream: towardUpstream, call: "splice") }
        direction.pending += moved
        noteRead(moved, towardUpstream: towardUpstream)
        let sent = tailgate_splice(pipe.readEnd, destination, direction.pending)
        if sent > 0 {
            direction.pending -= sent
        } else if errno != EAGAIN {
            return .failed(writeFailure(towardUpstream: towardUpstream, call: "splice"))
        }
        if direction.pending > 0 {
            direction.waitingForDestination = true
            return .drained
        }
        return moved == room ? .more : .drained
    }

    /// A read that returned 0 (the peer's FIN) or failed.
    private func endOfRead(_ result: Int, _ direction: inout SpliceDirection, towardUpstream: Bool, call: String) -> Step {
        if result == 0 {
            direction.sourceEnded = true
            return .drained
        }
        let error = errno
        if error == EAGAIN { return .drained }
        let side = towardUpstream ? "client" : "upstream"
        return .failed(PumpFailure(errno: error, detail: "\(side): \(SystemCallError(call, errno: error))"))
    }

    private func writeFailure(towardUpstream: Bool, call: String) -> PumpFailure {
        let error = errno
        return PumpFailure(errno: error, detail: "\(towardUpstream ? "upstream" : "client"): \(SystemCallError(call, errno: error))")
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

    /// Asks epoll for exactly what each socket waits on, so the level-triggered loop never spins; a socket
    /// that hung up is taken out of epoll while nothing is wanted from it (its hang-up cannot be masked).
    func updateEvents(loop: SpliceLoop) {
        let input = UInt32(TAILGATE_EPOLLIN)
        let output = UInt32(TAILGATE_EPOLLOUT)
        let wantedClient = (toUpstream.wantsRead ? input : 0) | (toClient.waitingForDestination ? output : 0)
        let wantedUpstream = (toClient.wantsRead ? input : 0) | (toUpstream.waitingForDestination ? output : 0)
        update(client, wanted: wantedClient, current: &clientEvents, parked: &clientParked, hungUp: clientHungUp, loop: loop)
        update(upstream, wanted: wantedUpstream, current: &upstreamEvents, parked: &upstreamParked, hungUp: upstreamHungUp, loop: loop)
    }

    private func update(_ descriptor: CInt, wanted: UInt32, current: inout UInt32, parked: inout Bool, hungUp: Bool, loop: SpliceLoop) {
        if hungUp, wanted == 0 {
            if !parked {
                parked = true
                loop.park(descriptor)
            }
            return
        }
        if parked {
            parked = false
            current = wanted
            loop.unpark(descriptor, events: wanted)
            return
        }
        if wanted != current {
            current = wanted
            loop.rewatch(descriptor, events: wanted)
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
