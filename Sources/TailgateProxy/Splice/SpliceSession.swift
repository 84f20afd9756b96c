import CTailgateLinux
import Glibc
import NIOCore

/// One relayed connection on a splice thread: connecting to a server of the upstream, sending the greeting
/// (PROXY header and ClientHello), then two directions spliced until both have finished.
final class SpliceSession {
    enum Stage {
        case connecting
        case greeting
        case relaying
        case closed
    }

    let record: ConnectionRecord
    let connection: SpliceConnection
    let client: CInt
    var upstream: CInt = -1
    let pool: UpstreamPool
    let servers: [SocketAddress]
    let registry: ConnectionRegistry
    var stage = Stage.connecting
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
        case .connecting:
            if now >= connectDeadline {
                let limit = pool.connectTimeout.nanoseconds / 1_000_000
                connectFailed("connect timed out after \(limit) ms", loop: loop)
            }
        case .greeting, .relaying:
            if now - lastActivity >= pool.idleTimeout {
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
                fail(.error, detail: "\(fromClient ? "client" : "upstream"): \(SystemCallError("socket", errno: error))", loop: loop)
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

    /// Moves what `source` has through the direction's pipe to `destination`. False when the session failed.
    private func pump(_ direction: inout SpliceDirection, from source: CInt, to destination: CInt, loop: SpliceLoop) -> Bool {
        let towardUpstream = source == client
        var rounds = 0
        while true {
            var filled = false
            if direction.wantsRead {
                if direction.pipe == nil {
                    guard let pipe = loop.pipes.take() else {
                        fail(.error, detail: SystemCallError("pipe2").description, loop: loop)
                        return false
                    }
                    direction.pipe = pipe
                }
                let room = SplicePipePool.chunk - direction.pending
                let moved = tailgate_splice(source, direction.pipe!.writeEnd, room)  // taken just above
                if moved > 0 {
                    direction.pending += moved
                    filled = moved == room
                    if towardUpstream { record.bytesFromClient += moved } else { record.bytesFromServer += moved }
                    lastActivity = .now()
                } else if moved == 0 {
                    direction.sourceEnded = true
                } else if errno != EAGAIN {
                    fail(.error, detail: "\(towardUpstream ? "client" : "upstream"): \(SystemCallError("splice"))", loop: loop)
                    return false
                }
            }
            if direction.pending > 0, let pipe = direction.pipe {
                let sent = tailgate_splice(pipe.readEnd, destination, direction.pending)
                if sent > 0 {
                    direction.pending -= sent
                } else if errno != EAGAIN {
                    fail(.error, detail: "\(towardUpstream ? "upstream" : "client"): \(SystemCallError("splice"))", loop: loop)
                    return false
                }
                if direction.pending > 0 { direction.waitingForDestination = true }
            }
            rounds += 1
            guard filled, !direction.waitingForDestination, rounds < 4 else { break }
        }
        if direction.pending == 0, let pipe = direction.pipe {
            loop.pipes.give(pipe)
            direction.pipe = nil
        }
        if direction.sourceEnded, direction.pending == 0, !direction.finished {
            direction.finished = true
            shutdown(destination, CInt(SHUT_WR))
        }
        return true
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

    var wantsRead: Bool { !sourceEnded && !waitingForDestination }
}
