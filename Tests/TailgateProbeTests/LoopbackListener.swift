import Foundation
import NIOCore
import TailgateTestSupport

/// A listening socket on 127.0.0.1 that accepts only when a test asks it to: until then,
/// connections complete in the kernel's backlog and nothing answers them. Closed, with
/// its own clients, when the object goes away.
final class LoopbackListener {
    let descriptor: Int32
    let port: Int
    private var clients: [Int32] = []

    init(backlog: Int32) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        let bound = try SocketAddress(ipAddress: "127.0.0.1", port: 0).withSockAddr { bind(fd, $0, socklen_t($1)) }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, listen(fd, backlog) == 0, named == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("bind/listen: \(reason)")
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        clients.forEach { close($0) }
        close(descriptor)
    }

    var address: SocketAddress {
        get throws { try SocketAddress(ipAddress: "127.0.0.1", port: port) }
    }

    /// Accepts the next connection (waiting at most five seconds) and reads from it until
    /// the peer closes it or five seconds pass.
    func acceptAndRead() throws -> [UInt8] {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 5000) == 1 else { throw TestFailure("no connection to accept") }
        let connection = accept(descriptor, nil, nil)
        guard connection >= 0 else { throw TestFailure("accept: \(String(cString: strerror(errno)))") }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        defer { close(connection) }
        var limit = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(connection, &chunk, chunk.count)
            guard count > 0 else { return received }
            received += chunk[..<count]
        }
    }

    /// Connects clients of its own until the accept queue is full, so that the kernel
    /// drops further SYNs and a new connect hangs. Needs a backlog of 0 (room for one).
    func fillAcceptQueue() throws {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard client >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        clients.append(client)
        guard try address.withSockAddr({ connect(client, $0, socklen_t($1)) }) == 0 else {
            throw TestFailure("connect: \(String(cString: strerror(errno)))")
        }
        // connect returns once the client has sent its ACK; the listener is readable once
        // the kernel has put the connection in the accept queue.
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 5000) == 1 else { throw TestFailure("the accept queue did not fill") }
    }
}
