import CTailgateLinux
import Glibc

/// A named thread that runs `body` once and is never joined (the control socket's accept loop).
public enum DetachedThread {
    private final class Box {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts the thread; false when the kernel refused one.
    @discardableResult
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
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
            return false
        }
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
