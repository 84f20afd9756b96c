import Foundation
import NIOCore

/// Plain sockets on 127.0.0.1 for the tests.
enum Loopback {
    /// A TCP port nothing listens on at the moment (the kernel's pick, released again).
    static func unusedPort() throws -> Int {
        let listener = try Listener(backlog: 1)
        return listener.port
    }

    /// A TCP port on 127.0.0.1 that refuses connections for the rest of the process: bound by a socket that
    /// never listens and is never closed, so no other test (they share this process) or program can take it.
    static func refusingPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard descriptor >= 0, bound else { throw TestFailure("cannot bind a port on 127.0.0.1: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether a TCP connect to 127.0.0.1:`port` succeeds now.
    static func acceptsConnections(port: Int) -> Bool {
        guard let address = try? SocketAddress(ipAddress: "127.0.0.1", port: port) else { return false }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return address.withSockAddr { connect(descriptor, $0, socklen_t($1)) } == 0
    }
}
