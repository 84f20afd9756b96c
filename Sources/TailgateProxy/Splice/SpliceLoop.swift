import CTailgateLinux
import Glibc
import NIOCore

/// The event loop of one relay thread: an epoll level-triggered loop over the sockets of its sessions,
/// plus a coarse timer pass for connect and idle timeouts. Lives on its thread only.
final class SpliceLoop {
    static let wakeupToken = UInt64.max

    let worker: SpliceWorker
    let pipes = SplicePipePool()
    /// Sessions by descriptor (both the client's and the upstream's), for O(1) dispatch.
    private var byDescriptor: [SpliceSession?] = []
    private var byID: [UInt64: SpliceSession] = [:]
    private var stopping = false
    private var nextTimerPass = NIODeadline.now()

    init(worker: SpliceWorker) {
        self.worker = worker
    }

    func run() {
        let capacity = 128
        var events = [UInt32](repeating: 0, count: capacity)
        var tokens = [UInt64](repeating: 0, count: capacity)
        while !(stopping && byID.isEmpty) {
            let count = tailgate_epoll_wait(worker.epoll, &events, &tokens, CInt(capacity), waitMilliseconds())
            if count < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in 0..<Int(count) {
                let token = tokens[index]
                if token == Self.wakeupToken {
                    handleCommands()
                } else if let session = session(for: CInt(truncatingIfNeeded: token)) {
                    session.handle(events[index], on: CInt(truncatingIfNeeded: token), loop: self)
                }
            }
            let now = NIODeadline.now()
            if now >= nextTimerPass {
                timerPass(now)
                nextTimerPass = now + .milliseconds(100)
            }
        }
        for session in Array(byID.values) { session.close(loop: self) }
        pipes.drain()
    }

    /// Blocks indefinitely when there is nothing to time out; otherwise wakes for the next timer pass.
    private func waitMilliseconds() -> CInt {
        guard !byID.isEmpty else { return -1 }
        let left = (nextTimerPass - NIODeadline.now()).nanoseconds / 1_000_000
        return CInt(max(0, min(left + 1, 1_000)))
    }

    private func handleCommands() {
        for command in worker.takeCommands() {
            switch command {
            case .adopt(let ticket, let connection):
                let session = SpliceSession(ticket: ticket, connection: connection)
                byID[connection.id] = session
                worker.sessionStarted()
                session.start(loop: self)
            case .closeAtDrainDeadline(let id):
                guard let session = byID[id] else { continue }
                session.record.end(.drainTimeout)
                session.close(loop: self)
            case .stop:
                stopping = true
                for session in Array(byID.values) {
                    session.record.end(.drainTimeout)
                    session.close(loop: self)
                }
            }
        }
    }

    /// Connect deadlines (every 100 ms) and idle timeouts.
    private func timerPass(_ now: NIODeadline) {
        for session in Array(byID.values) {
            session.checkTimers(now: now, loop: self)
        }
    }

    // MARK: - Descriptor bookkeeping

    private func session(for descriptor: CInt) -> SpliceSession? {
        let index = Int(descriptor)
        return index < byDescriptor.count ? byDescriptor[index] : nil
    }

    /// Adds `descriptor` to epoll for `session` with `events`.
    func watch(_ descriptor: CInt, events: UInt32, for session: SpliceSession) -> Bool {
        let index = Int(descriptor)
        if index >= byDescriptor.count {
            byDescriptor.append(contentsOf: repeatElement(nil, count: max(index + 1 - byDescriptor.count, byDescriptor.count)))
        }
        byDescriptor[index] = session
        return tailgate_epoll_control(worker.epoll, 0, descriptor, events, UInt64(descriptor)) == 0
    }

    /// Changes the events epoll reports for `descriptor`.
    func rewatch(_ descriptor: CInt, events: UInt32) {
        _ = tailgate_epoll_control(worker.epoll, 1, descriptor, events, UInt64(descriptor))
    }

    /// Forgets `descriptor` before it is closed (closing removes it from epoll).
    func forget(_ descriptor: CInt) {
        let index = Int(descriptor)
        if index >= 0, index < byDescriptor.count { byDescriptor[index] = nil }
    }

    func sessionClosed(_ session: SpliceSession) {
        if byID.removeValue(forKey: session.connection.id) != nil {
            worker.sessionEnded()
        }
    }
}

@available(*, unavailable)
extension SpliceLoop: Sendable {}
