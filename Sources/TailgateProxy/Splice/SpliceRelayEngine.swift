import CTailgateLinux
import Glibc
import NIOCore
import Synchronization

/// Relays connections with splice(2): bytes go socket → pipe → socket inside the kernel and never enter the
/// agent's memory, and an idle connection holds no buffer at all (HAProxy's technique).
///
/// Each relay thread runs its own epoll loop and serves the connections it accepted from start to end:
/// the PROXY header and ClientHello, routing, the connect to the upstream, the relay. The listening sockets
/// are shared; how many threads accept from them follows the load (`AcceptSpread`).
public final class SpliceRelayEngine: Sendable {
    private let workers: [SpliceWorker]
    private let spread: AcceptSpread

    /// Starts `threads` relay threads. Throws when the kernel refuses an epoll or eventfd descriptor.
    public init(threads: Int) throws(SystemCallError) {
        // A write to a socket whose peer is gone must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let spread = AcceptSpread.forAgent(threadCount: max(1, threads))
        var workers: [SpliceWorker] = []
        for index in 0..<spread.threadCount {
            workers.append(try SpliceWorker(index: index, spread: spread))
        }
        spread.attach(workers)
        self.workers = workers
        self.spread = spread
    }

    /// How many relay threads accept new connections now.
    public var acceptingThreads: Int { spread.acceptingThreads }

    /// `[global] accept_spread`: every thread accepts (`all`), or as many as the load needs.
    public func spreadAcceptsOverAllThreads(_ all: Bool) {
        spread.setSpreadsAll(all)
    }

    /// Connections being connected or relayed, over all threads.
    public var activeSessions: Int {
        workers.reduce(0) { $0 + $1.activeSessions }
    }

    /// Starts accepting on `descriptor` in every thread that accepts (the kernel wakes one of them per connection).
    func listen(_ descriptor: CInt, for socket: BoundSocket) {
        for worker in workers { worker.post(.listen(descriptor, socket)) }
    }

    /// Stops accepting on `descriptor` in every thread; returns once none of them watches it any more,
    /// so that the caller may close it.
    func stopListening(_ descriptor: CInt) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let countdown = SpliceCountdown(count: workers.count, continuation: continuation)
            for worker in workers { worker.post(.unlisten(descriptor, countdown)) }
        }
    }

    /// Closes whatever is still relayed and stops the threads; waits until they have exited.
    public func shutdown() {
        spread.freeze()
        for worker in workers { worker.post(.stop) }
        for worker in workers { worker.join() }
    }
}

/// Resumes a continuation once every relay thread has answered.
final class SpliceCountdown: Sendable {
    private let state: Mutex<(left: Int, continuation: CheckedContinuation<Void, Never>?)>

    init(count: Int, continuation: CheckedContinuation<Void, Never>) {
        state = Mutex((count, continuation))
    }

    func done() {
        let finished = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.left -= 1
            guard state.left == 0 else { return nil }
            defer { state.continuation = nil }
            return state.continuation
        }
        finished?.resume()
    }
}

/// A failed system call: its name and errno, as an operator reads them.
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: CInt

    public init(_ call: String, errno: CInt = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        described(by: nil)
    }

    /// "`side`: call: text (errno N)", built in one string: a connection that ends on a reset or broken pipe
    /// (most do, when clients close without waiting for the server's close_notify) writes this in its log line.
    func described(by side: StaticString?) -> String {
        let text = Self.errorText(errno)
        var line = ""
        line.reserveCapacity(32 + call.utf8.count + text.utf8.count)
        if let side {
            line += side.description
            line += ": "
        }
        line += call
        line += ": "
        line += text
        line += " (errno "
        line += String(errno)
        line += ")"
        return line
    }

    /// strerror(3)'s text for the errno values Linux defines, read once: each strerror call goes through
    /// gettext's catalog lookup.
    private static let errorTexts: [String] = (0..<134).map { String(cString: strerror(CInt($0))) }

    static func errorText(_ errno: CInt) -> String {
        errno >= 0 && Int(errno) < errorTexts.count ? errorTexts[Int(errno)] : String(cString: strerror(errno))
    }
}

extension SystemCallError {
    /// NIO's `IOError` in the same words as the splice engine's, "read: Connection reset by peer (errno 104)":
    /// NIO's own text names the Swift function ("read(descriptor:pointer:size:)") and leaves a parenthesis open.
    init?(nio error: any Error) {
        guard let error = error as? IOError else { return nil }
        let text = String(describing: error)
        self.init(String(text.prefix { $0 != "(" && $0 != ":" }), errno: error.errnoCode)
    }

    /// Any error as an operator reads it: NIO's `IOError` as above, anything else as it describes itself;
    /// prefixed with `side` ("client: …") when given.
    public static func describe(_ error: any Error, side: StaticString? = nil) -> String {
        if let failure = SystemCallError(nio: error) { return failure.described(by: side) }
        return side.map { "\($0): \(error)" } ?? "\(error)"
    }
}
