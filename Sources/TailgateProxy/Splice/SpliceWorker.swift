import CTailgateLinux
import Glibc
import NIOCore
import Synchronization
import TailgateSystem

/// A message to a relay thread.
enum SpliceCommand: Sendable {
    case closeAtDrainDeadline(SpliceConnection)
    case listen(CInt, BoundSocket)
    case unlisten(CInt, SpliceCountdown)
    /// The number of threads that accept changed (see `AcceptSpread`).
    case acceptSpreadChanged
    /// A relaying session another thread hands over (see `SpliceLoop.handOverHalf`).
    case adopt(SpliceHandoff)
    /// Liveness: the thread notes that it ran (see `SpliceRelayEngine.ping()`).
    case ping
    case stop
}

/// A relayed connection as the drain sees it.
final class SpliceConnection: TrackedConnection {
    let id: UInt64
    /// The thread that serves the connection; it changes when a session is handed over.
    private let owner: Mutex<SpliceWorker>

    init(id: UInt64, worker: SpliceWorker) {
        self.id = id
        self.owner = Mutex(worker)
    }

    var worker: SpliceWorker { owner.withLock { $0 } }

    func moved(to worker: SpliceWorker) {
        owner.withLock { $0 = worker }
    }

    func closeAtDrainDeadline() {
        worker.post(.closeAtDrainDeadline(self))
    }
}

/// A session on its way from one relay thread to another. Sessions belong to one thread at a time: the
/// thread that posts this has taken the session out of its epoll and tables and never touches it again.
final class SpliceHandoff: @unchecked Sendable {
    let session: SpliceSession

    init(_ session: SpliceSession) {
        self.session = session
    }
}

/// One relay thread: its epoll and wake-up descriptors and the inbox other threads post to.
/// The connections themselves live in the thread's `SpliceLoop` and are touched by no other thread.
final class SpliceWorker: Sendable {
    let epoll: Epoll
    let wakeup: CInt
    let name: String
    let index: Int
    let spread: AcceptSpread
    private let inbox = Mutex<[SpliceCommand]>([])
    private let sessionIDs = Atomic<UInt64>(0)
    private let thread = Mutex<pthread_t?>(nil)
    /// When the thread last answered a ping (uptime nanoseconds).
    private let lastAnswer = Atomic<UInt64>(0)

    init(index: Int, spread: AcceptSpread) throws(SystemCallError) {
        let epoll = try Epoll()
        let wakeup = tailgate_eventfd()
        guard wakeup >= 0 else {
            let error = SystemCallError("eventfd")
            epoll.close()
            throw error
        }
        do throws(SystemCallError) {
            try epoll.add(wakeup, .input, token: SpliceLoop.wakeupToken)
        } catch {
            epoll.close()
            close(wakeup)
            throw error
        }
        self.epoll = epoll
        self.wakeup = wakeup
        self.name = "splice-\(index)"
        self.index = index
        self.spread = spread
        try start()
    }

    /// Unique over all threads (the thread's number in the top bits): a handed-over session keeps its id.
    func nextSessionID() -> UInt64 {
        UInt64(index) << 48 | sessionIDs.add(1, ordering: .relaxed).newValue
    }

    /// Queues `command` and wakes the thread.
    func post(_ command: SpliceCommand) {
        inbox.withLock { $0.append(command) }
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    /// Everything posted since the last call.
    func takeCommands() -> [SpliceCommand] {
        var drained: UInt64 = 0
        _ = read(wakeup, &drained, 8)
        return inbox.withLock { commands in
            let taken = commands
            commands.removeAll(keepingCapacity: true)
            return taken
        }
    }

    /// Called by the thread itself when it handles `.ping`.
    func answerPing() {
        lastAnswer.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }

    /// Whether the thread has handled a ping sent at `sent` or later.
    func hasAnswered(since sent: NIODeadline) -> Bool {
        lastAnswer.load(ordering: .relaxed) >= sent.uptimeNanoseconds
    }

    private func start() throws(SystemCallError) {
        let handle = try NamedThread.start(name: name) { [self] in SpliceLoop(worker: self).run() }
        thread.withLock { $0 = handle }
    }

    /// Waits for the thread to finish after `.stop`, then closes the worker's descriptors.
    func join() {
        guard let handle = thread.withLock({ handle -> pthread_t? in
            defer { handle = nil }
            return handle
        }) else { return }
        pthread_join(handle, nil)
        epoll.close()
        close(wakeup)
    }
}
