import Foundation
import NIOCore

/// Plain sockets on 127.0.0.1 for the tests.
enum Loopback {
    /// A TCP port nothing listens on at the moment (the kernel's pick, released again).
    static func unusedPort() throws -> Int {
        let listener = try Listener(backlog: 1)
        return listener.port
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
