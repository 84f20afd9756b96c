import CTailgateLinux
import Glibc
import NIOCore
import TailgateConfig
import TailgateSystem

/// The event loop of one relay thread: an epoll loop over the sockets of its sessions, edge-triggered for
/// connections (each socket is registered once; no epoll_ctl per state change) and level-triggered for the
/// shared listening sockets, plus a coarse timer pass for connect and idle timeouts. Lives on its thread only.
final class SpliceLoop {
    /// A client socket from accept on: input and the peer's FIN (EPOLLOUT is added if a write ever waits).
    static let clientEvents: EpollEvents = [.input, .peerClosed, .edgeTriggered]
    static let clientEventsWithOutput = clientEvents.union(.output)
    /// An upstream socket from its connect on (EPOLLOUT says the connect finished).
    static let upstreamEvents = clientEventsWithOutput
    static let wakeupToken = UInt64.max
    /// Listening sockets carry this bit in their epoll token. A connection's token is its descriptor in the
    /// low 32 bits and its session's tag above: an event fetched in the same batch as the close of its
    /// descriptor must not reach a new session that got the same number meanwhile (with edge-triggered
    /// readiness kept across events, a stale "peer closed" would end the new connection's input early).
    static let listenerBit: UInt64 = 1 << 63
    /// After EMFILE/ENFILE, how long a listener rests before accepting again (no busy loop while out of descriptors).
    static let acceptPause: TimeAmount = .milliseconds(250)

    let worker: SpliceWorker
    let pipes = SplicePipePool()
    /// Where copy-mode reads land before they are written out; shared by the thread's sessions.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16_384, alignment: 64)
    /// Sessions by descriptor (both the client's and the upstream's), for O(1) dispatch.
    private var byDescriptor: [SpliceSession?] = []
    private var byID: [UInt64: SpliceSession] = [:]
    private var listening: [CInt: BoundSocket] = [:]
    /// Listeners taken out of epoll after running out of descriptors, and when to put them back.
    private var paused: [CInt: NIODeadline] = [:]
    private var lastExhaustionWarning = NIODeadline.uptimeNanoseconds(0)
    private var stopping = false
    private var nextTimerPass = NIODeadline.now()
    /// Thread 0 is idle and its last timer pass let no other thread go: it sleeps until an event.
    private var idleKeepsThreads = false
    /// The time as of the last wake-up: what sessions stamp activity and deadlines with.
    private(set) var now = NIODeadline.now()
    /// Sessions whose pumps stopped at their round limit with input left: served after this turn's events.
    private var again: [SpliceSession] = []
    /// Whether this thread's listening sockets are in its epoll (see `AcceptSpread`).
    private var accepting: Bool
    /// The thread's time on and waiting for a CPU, and the time, at its last load measurement; nil after it
    /// slept idle.
    private var loadSample: (running: Int64, waiting: Int64, at: NIODeadline)?
    /// This thread's `/proc/thread-self/schedstat`, kept open for the load measurements.
    private let schedstat = AcceptSpread.openSchedstat()

    init(worker: SpliceWorker) {
        self.worker = worker
        self.accepting = worker.spread.isAccepting(worker.index)
    }

    func run() {
        let capacity = 128
        var events = [UInt32](repeating: 0, count: capacity)
        var tokens = [UInt64](repeating: 0, count: capacity)
        let logLines = LogOutput.standardError.startBatching()
        defer { LogOutput.standardError.stopBatching() }
        while !(stopping && byID.isEmpty) {
            let idle = again.isEmpty && byID.isEmpty && paused.isEmpty
            if !idle { idleKeepsThreads = false }
            // Log lines wait for the timer pass (at most ~100 ms), or go out before the thread sleeps for good.
            if idle {
                logLines.flush()
                if loadSample != nil {
                    loadSample = nil
                    worker.spread.reportIdle(worker.index)
                }
            }
            let wait = idle ? idleWaitMilliseconds() : waitMilliseconds()
            let count: Int
            do {
                count = try worker.epoll.wait(events: &events, tokens: &tokens, timeoutMilliseconds: wait)
            } catch {
                break
            }
            now = .now()
            for index in 0..<count {
                let token = tokens[index]
                if token == Self.wakeupToken {
                    handleCommands()
                } else if token & Self.listenerBit != 0 {
                    acceptConnections(on: CInt(truncatingIfNeeded: token & 0xFFFF_FFFF))
                } else if let session = session(for: CInt(truncatingIfNeeded: token)), session.tag == token >> 32 {
                    session.handle(EpollEvents(rawValue: events[index]), on: CInt(truncatingIfNeeded: token), loop: self)
                }
            }
            if !again.isEmpty {
                let sessions = again
                again.removeAll(keepingCapacity: true)
                for session in sessions { session.resume(loop: self) }
            }
            if now >= nextTimerPass {
                let accepting = worker.spread.acceptingThreads
                measureLoad()
                timerPass(now)
                logLines.flush()
                nextTimerPass = now + .milliseconds(100)
                // Idle, and the pass let no thread go (another still has work): sleep until an event.
                idleKeepsThreads = byID.isEmpty && paused.isEmpty && worker.spread.acceptingThreads == accepting
            }
        }
        for session in Array(byID.values) { session.closeAtDrainDeadline(loop: self) }
        pipes.drain()
        scratch.deallocate()
        if schedstat >= 0 { Glibc.close(schedstat) }
    }

    /// With connections to look after: wakes for the next timer pass (at once when a session is to resume).
    private func waitMilliseconds() -> CInt {
        guard again.isEmpty else { return 0 }
        let left = (nextTimerPass - NIODeadline.now()).nanoseconds / 1_000_000
        return CInt(max(0, min(left + 1, 1_000)))
    }

    /// With nothing to do, a thread sleeps until an event. Thread 0 first comes back (within a second or
    /// two; `nextTimerPass` moves to when the count may change) while other threads still accept, so that
    /// its timer pass lets them go: otherwise the threads that joined during the last burst would stay until
    /// the next one, and its first connections would be spread over them however light it is.
    private func idleWaitMilliseconds() -> CInt {
        guard worker.index == 0, !idleKeepsThreads, worker.spread.othersAccept else { return -1 }
        nextTimerPass = max(nextTimerPass, worker.spread.earliestChange)
        let left = (nextTimerPass - NIODeadline.now()).nanoseconds / 1_000_000
        return CInt(max(0, left + 1))
    }

    private func handleCommands() {
        for command in worker.takeCommands() {
            switch command {
            case .closeAtDrainDeadline(let connection):
                guard let session = byID[connection.id] else {
                    // Handed over to another thread after the drain looked up its owner: pass it on.
                    let owner = connection.worker
                    if owner !== worker { owner.post(.closeAtDrainDeadline(connection)) }
                    continue
                }
                session.closeAtDrainDeadline(loop: self)
            case .listen(let descriptor, let socket):
                listening[descriptor] = socket
                if accepting { watchListener(descriptor) }
            case .unlisten(let descriptor, let countdown):
                if listening.removeValue(forKey: descriptor) != nil, paused.removeValue(forKey: descriptor) == nil, accepting {
                    worker.epoll.remove(descriptor)
                }
                countdown.done()
            case .acceptSpreadChanged:
                let joins = worker.spread.isAccepting(worker.index)
                guard joins != accepting else { continue }
                accepting = joins
                // Paused listeners are out of epoll already; the timer pass puts them back only while accepting.
                for descriptor in listening.keys where paused[descriptor] == nil {
                    if joins {
                        watchListener(descriptor)
                    } else {
                        worker.epoll.remove(descriptor)
                    }
                }
            case .adopt(let handoff):
                adopt(handoff.session)
            case .ping:
                worker.answerPing()
            case .stop:
                stopping = true
                for session in Array(byID.values) {
                    session.closeAtDrainDeadline(loop: self)
                }
            }
        }
    }

    /// Connect deadlines (every 100 ms) and idle timeouts; listeners resting after descriptor exhaustion.
    private func timerPass(_ now: NIODeadline) {
        for (descriptor, until) in paused where now >= until {
            paused[descriptor] = nil
            if accepting { watchListener(descriptor) }
        }
        for session in Array(byID.values) {
            session.checkTimers(loop: self)
        }
    }

    /// Measures the thread's load since the last timer pass for `AcceptSpread`; thread 0 also rebalances, and
    /// hands connections over when it is the busy one.
    private func measureLoad() {
        let running: Int64, waiting: Int64
        if schedstat >= 0 {
            guard let times = AcceptSpread.schedulerTimes(schedstat) else { return }
            (running, waiting) = times
        } else {
            // Without the scheduler's file (no /proc, or a kernel without CONFIG_SCHED_INFO): CPU time alone.
            (running, waiting) = (AcceptSpread.threadCPUTime(), 0)
        }
        if let sample = loadSample {
            let wall = (now - sample.at).nanoseconds
            if wall > 0 {
                let busy = Double(running - sample.running) / Double(wall)
                worker.spread.report(worker.index, load: busy + Double(waiting - sample.waiting) / Double(wall), busy: busy)
            }
        }
        loadSample = (running, waiting, now)
        guard worker.index == 0 else { return }
        let spread = worker.spread
        if let joined = spread.rebalance(now: now), let target = spread.worker(joined) {
            // The relay threads have no logger of their own; a listener's is the agent's (with its handler).
            listening.values.first?.logger.info("another relay thread accepts", metadata: [
                "thread": .string(target.name), "accepting": .stringConvertible(spread.acceptingThreads),
            ])
        }
        if let quietest = spread.handOverTarget(now: now), let target = spread.worker(quietest) {
            handOverHalf(to: target)
        }
    }

    /// Gives every second relaying session to `target`, a less busy accepting thread: connections opened
    /// while this thread sufficed would otherwise keep it the only busy one (sessions still being admitted
    /// or connected stay). The session leaves this thread's epoll and tables first; `target` registers its
    /// sockets again (edge-triggered: readiness that is already there is reported at once) and goes on.
    private func handOverHalf(to target: SpliceWorker) {
        var seen = 0
        var given = 0
        defer {
            // Nothing to say when there was nothing to give (one busy connection, or only new ones).
            if given > 0 {
                listening.values.first?.logger.info("relay connections handed to a less busy thread", metadata: [
                    "thread": .string(target.name), "connections_handed_over": .stringConvertible(given),
                    "connections_kept": .stringConvertible(seen - given),
                ])
            }
        }
        for session in Array(byID.values) where session.machine.isRelaying {
            seen += 1
            guard seen % 2 == 0 else { continue }
            given += 1
            for descriptor in [session.client, session.upstream] {
                worker.epoll.remove(descriptor)
                forget(descriptor)
            }
            if session.postedAgain {
                session.postedAgain = false
                again.removeAll { $0 === session }
            }
            byID[session.connection.id] = nil
            session.connection.moved(to: target)
            target.post(.adopt(SpliceHandoff(session)))
        }
    }

    /// Takes over a session another thread handed over.
    private func adopt(_ session: SpliceSession) {
        byID[session.connection.id] = session
        if stopping {
            session.closeAtDrainDeadline(loop: self)
            return
        }
        let clientEvents = session.machine.clientWatchesOutput ? Self.clientEventsWithOutput : Self.clientEvents
        guard watch(session.client, events: clientEvents, for: session), watch(session.upstream, events: Self.upstreamEvents, for: session)
        else {
            session.fail(.error, detail: SystemCallError("epoll_ctl").described(by: "handover"), loop: self)
            return
        }
        session.resume(loop: self)
    }

    // MARK: - Accepting

    /// Level-triggered, and exclusive: the kernel wakes one of the threads waiting on the listener, not all.
    private func watchListener(_ descriptor: CInt) {
        try? worker.epoll.add(descriptor, [.input, .exclusive], token: UInt64(descriptor) | Self.listenerBit)
    }

    /// Accepts one connection per event: the listener is level-triggered, so epoll reports it again next turn
    /// while more are queued (no accept4 that only says EAGAIN; the other thread's share is woken meanwhile).
    private func acceptConnections(on listener: CInt) {
        guard let socket = listening[listener] else { return }
        for _ in 0..<4 {
            var storage = sockaddr_storage()
            var length = UInt32(MemoryLayout<sockaddr_storage>.size)
            let descriptor = tailgate_accept(listener, &storage, &length)
            if descriptor >= 0 {
                admit(descriptor, peer: SocketAddress(storage), on: socket)
                return
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK:
                return
            case EINTR, ECONNABORTED, EPROTO, EPERM:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                pauseAccepting(listener, socket: socket, error: SystemCallError("accept4"))
                return
            default:
                socket.logger.error("accept failed", metadata: ["error": .string("\(SystemCallError("accept4"))")])
                return
            }
        }
    }

    /// Out of descriptors: stop watching the listener for a moment instead of spinning on it; new connections
    /// wait in the kernel's accept queue meanwhile.
    private func pauseAccepting(_ listener: CInt, socket: BoundSocket, error: SystemCallError) {
        worker.epoll.remove(listener)
        let now = NIODeadline.now()
        paused[listener] = now + Self.acceptPause
        if now - lastExhaustionWarning >= .seconds(1) {
            lastExhaustionWarning = now
            socket.logger.warning("cannot accept: out of file descriptors; pausing accepts", metadata: [
                "error": .string(error.description), "pause_ms": .stringConvertible(Self.acceptPause.nanoseconds / 1_000_000),
                "open_connections": .stringConvertible(byID.count),
            ])
        }
    }

    private func admit(_ descriptor: CInt, peer: SocketAddress?, on socket: BoundSocket) {
        let listener = socket.listener
        let (policy, sources) = listener.current
        var counted: (tracker: SourceTracker, key: SourceKey)?
        var trusted = false
        if let sources {
            // A direct client is judged now, before a byte is read; a trusted peer's client once its PROXY
            // header has named it (the peer itself, which carries everyone, never is).
            trusted = policy.trusts(peer)
            if !trusted {
                switch listener.judgeSource(peer, limits: policy.sourceLimits, tracker: sources, now: now, logger: socket.logger, beforeRoute: true) {
                case .admitted(let count):
                    counted = count
                case .refused:
                    tailgate_close(descriptor)
                    return
                }
            }
        }
        guard socket.admitOrRefuse(listener: listener, policy: policy) else {
            if let counted { counted.tracker.release(counted.key) }
            tailgate_close(descriptor)
            return
        }
        let record = ConnectionRecord(listener: listener, logger: socket.logger, lineWriter: socket.lineWriter, peer: peer)
        record.sourceCount = counted
        if trusted { record.sourceTracker = sources }
        let connection = SpliceConnection(id: worker.nextSessionID(), worker: worker)
        socket.connections.add(connection)
        let session = SpliceSession(
            accepted: descriptor, record: record, policy: policy, registry: socket.connections, connection: connection,
            localAddress: socket.specificAddress, now: now
        )
        byID[connection.id] = session
        session.start(loop: self)
    }

    // MARK: - Descriptor bookkeeping

    private func session(for descriptor: CInt) -> SpliceSession? {
        let index = Int(descriptor)
        return index < byDescriptor.count ? byDescriptor[index] : nil
    }

    /// Adds `descriptor` to epoll for `session` with `events`.
    func watch(_ descriptor: CInt, events: EpollEvents, for session: SpliceSession) -> Bool {
        let index = Int(descriptor)
        if index >= byDescriptor.count {
            byDescriptor.append(contentsOf: repeatElement(nil, count: max(index + 1 - byDescriptor.count, byDescriptor.count)))
        }
        byDescriptor[index] = session
        do {
            try worker.epoll.add(descriptor, events, token: Self.token(descriptor, session))
            return true
        } catch {
            return false
        }
    }

    /// Changes the events epoll reports for `session`'s `descriptor`.
    func rewatch(_ descriptor: CInt, events: EpollEvents, for session: SpliceSession) {
        try? worker.epoll.modify(descriptor, events, token: Self.token(descriptor, session))
    }

    private static func token(_ descriptor: CInt, _ session: SpliceSession) -> UInt64 {
        UInt64(UInt32(bitPattern: descriptor)) | session.tag << 32
    }

    /// Serves `session` again after this turn's events, without waiting for one.
    func postAgain(_ session: SpliceSession) {
        again.append(session)
    }

    /// Forgets `descriptor` before it is closed (closing removes it from epoll).
    func forget(_ descriptor: CInt) {
        let index = Int(descriptor)
        if index >= 0, index < byDescriptor.count { byDescriptor[index] = nil }
    }

    func sessionClosed(_ session: SpliceSession) {
        byID.removeValue(forKey: session.connection.id)
    }
}

@available(*, unavailable)
extension SpliceLoop: Sendable {}
