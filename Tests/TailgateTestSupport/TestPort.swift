import Glibc
import Synchronization

/// TCP ports for tests, which share one process and run alongside other programs on the machine.
public enum TestPort {
    /// A port nothing is bound to at the moment, on any address. It is taken below the kernel's range for
    /// outgoing connections (32768 and up by default), so that no client socket of a test running alongside
    /// holds it as its source port (a bind to the wildcard would then fail), and it is never handed out
    /// twice in this process, so that two tests do not share one (a "refused" port of one test becoming
    /// another's listener). (The kernel's pick of port 0, bound and released, is in that range and is
    /// handed out again.)
    public static func free() -> Int {
        handedOut.withLock { used in
            while true {
                let port = Int.random(in: 20_000..<32_000)
                if used.contains(port) || !nothingBound(to: port) { continue }
                used.insert(port)
                return port
            }
        }
    }

    private static let handedOut = Mutex<Set<Int>>([])

    /// A port on 127.0.0.1 that refuses connections: one from `free()` bound by a socket that never listens
    /// and is never closed, so a connect to it is refused for the rest of the process, whatever else runs on
    /// the machine (port 9, the old choice, is discard's when inetd runs).
    public static let refusing: Int = {
        let port = free()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0 && bind(fd, 0x7F00_0001, port), "cannot bind 127.0.0.1:\(port): errno \(errno)")
        return port
    }()

    /// "127.0.0.1:PORT" of `refusing`, for an upstream server that refuses every connection.
    public static var refusingAddress: String { "127.0.0.1:\(refusing)" }

    /// Whether a TCP connect to 127.0.0.1:`port` succeeds now.
    public static func acceptsConnections(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return withAddress(0x7F00_0001, port) { connect(fd, $0, $1) } == 0
    }

    /// Waits up to `timeout` seconds until something accepts TCP connections on 127.0.0.1:`port`.
    public static func waitUntilAccepting(_ port: Int, timeout: Double = 20) -> Bool {
        Poll.until(timeout: timeout) { acceptsConnections(port) }
    }

    /// Whether a plain bind to 0.0.0.0:`port` succeeds now (no SO_REUSEADDR: any socket on the port stops it).
    private static func nothingBound(to port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        return bind(fd, INADDR_ANY, port)
    }

    /// Binds `fd` to IPv4 `host` (host byte order) and `port`, without SO_REUSEADDR.
    private static func bind(_ fd: Int32, _ host: UInt32, _ port: Int) -> Bool {
        withAddress(host, port) { Glibc.bind(fd, $0, $1) } == 0
    }

    /// Calls `body` with the IPv4 socket address of `host` (host byte order) and `port`, and its length.
    private static func withAddress<Result>(_ host: UInt32, _ port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = host.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
