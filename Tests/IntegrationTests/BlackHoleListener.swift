import Foundation

/// A loopback port whose SYNs go unanswered: an upstream server that neither accepts nor refuses.
///
/// A listening socket with a backlog of 0 whose accept queue is filled by one connection the test never
/// accepts: the kernel then drops every further SYN (tcp_abort_on_overflow is off by default), so a
/// connect to the port hangs in SYN_SENT until the connecting side gives up.
final class BlackHoleListener {
    let port: Int
    private let listener: Int32
    private var fillers: [Int32] = []
    private var fillerPorts: Set<Int> = []

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0, listen(listener, 0) == 0 else { Glibc.close(listener); throw SandboxError.command("black hole: bind/listen errno \(errno)") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        // Connect until one connection stays unanswered: from then on the queue is full.
        for _ in 0..<8 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(fd)
            var local = sockaddr_in()
            var localLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) } }
            fillerPorts.insert(Int(UInt16(bigEndian: local.sin_port)))
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&entry, 1, 300) == 0 { return }
        }
        throw SandboxError.command("black hole: the accept queue of port \(port) did not fill")
    }

    /// Connections to the port (other than the ones that fill its queue) still waiting for a SYN-ACK.
    var pendingConnects: Int {
        TCPTable.rows().filter { $0.remotePort == port && $0.state == TCPTable.synSent && !fillerPorts.contains($0.localPort) }.count
    }

    deinit {
        for fd in fillers { Glibc.close(fd) }
        Glibc.close(listener)
    }
}
