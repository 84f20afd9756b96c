import CTailgateLinux
import Glibc
import NIOCore
import TailgateSystem

/// A non-blocking listening TCP socket opened directly (the splice engine accepts on it itself).
public enum ListeningSocket {
    static let backlog: CInt = 4_096

    /// Opens, binds and listens; returns the descriptor and the address actually bound (port 0 resolved).
    /// `sharing` sets SO_REUSEPORT first (see `BoundSocket.allowSharing`).
    public static func open(_ address: SocketAddress, sharing: Bool = false) throws(SystemCallError) -> (descriptor: CInt, bound: SocketAddress) {
        let family = address.protocol.rawValue
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw SystemCallError("socket") }
        do throws(SystemCallError) {
            try set(descriptor, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR")
            if sharing { try set(descriptor, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT") }
            // IP_FREEBIND: a tailnet address (100.x) may not exist yet when tailgate starts at boot,
            // before tailscaled; the socket binds now and accepts once the address appears.
            try set(descriptor, CInt(IPPROTO_IP), IP_FREEBIND, "IP_FREEBIND")
            // Accepted sockets inherit TCP_NODELAY on Linux: one setsockopt here instead of one per connection.
            try set(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, "TCP_NODELAY")
            if case .v6 = address {
                // Let "[::]:443" and "0.0.0.0:443" coexist, as nginx does.
                try set(descriptor, CInt(IPPROTO_IPV6), IPV6_V6ONLY, "IPV6_V6ONLY")
            }
            let bound = address.withSockAddr { pointer, length in Glibc.bind(descriptor, pointer, socklen_t(length)) }
            guard bound == 0 else { throw SystemCallError("bind") }
            guard listen(descriptor, backlog) == 0 else { throw SystemCallError("listen") }
            return (descriptor, try localAddress(of: descriptor))
        } catch {
            close(descriptor)
            throw error
        }
    }

    /// getsockname(2) as a SocketAddress.
    static func localAddress(of descriptor: CInt) throws(SystemCallError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0, let address = SocketAddress(storage) else { throw SystemCallError("getsockname") }
        return address
    }

    static func set(_ descriptor: CInt, _ level: CInt, _ option: CInt, _ name: String) throws(SystemCallError) {
        var one: CInt = 1
        guard setsockopt(descriptor, level, option, &one, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw SystemCallError("setsockopt \(name)")
        }
    }
}

extension SocketAddress {
    /// An IPv4 or IPv6 address from what accept(2) or getsockname(2) filled in.
    ///
    /// Made with an empty host name: NIO's plain initializer formats the address as its "host" through
    /// inet_ntop (an sprintf and a string per accepted connection), and tailgate never reads it; log lines
    /// write addresses from their bytes (`appendEndpointDescription`).
    init?(_ storage: sockaddr_storage) {
        var storage = storage
        switch CInt(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            self.init(address, host: "")
        case AF_INET6:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            self.init(address, host: "")
        default:
            return nil
        }
    }
}
