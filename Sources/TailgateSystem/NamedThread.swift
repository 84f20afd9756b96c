import CTailgateLinux
import Glibc

/// The agent's own threads (relay threads, the log writer, the control socket, the ban desk, the CrowdSec
/// bouncer): a pthread named for `top -H` and the journal's thread views, running `body` once.
public enum NamedThread {
    private final class Box {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts a thread that is joined later; returns its handle.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemCallError) -> pthread_t {
        let context = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            tailgate_name_thread(box.name)
            box.body()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(context).release()
            throw SystemCallError("pthread_create", errno: result)
        }
        return thread
    }

    /// Starts a thread that is never joined; false when the kernel refused one.
    @discardableResult
    public static func startDetached(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        guard let thread = try? start(name: name, body) else { return false }
        pthread_detach(thread)
        return true
    }
}

/// The process at the other end of a Unix socket (SO_PEERCRED).
public enum UnixPeer {
    /// `uid 0 pid 1234`, or nil when the kernel does not say.
    public static func describe(_ socket: CInt) -> String? {
        var uid: UInt32 = 0
        var pid: Int32 = 0
        guard tailgate_peer_credentials(socket, &uid, &pid) == 0 else { return nil }
        return "uid \(uid) pid \(pid)"
    }
}
