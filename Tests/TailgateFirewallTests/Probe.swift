import Glibc

/// Small socket probes run inside a namespace (on a `NetworkNamespace.perform` thread).
enum Probe {
    enum Outcome: Equatable, Sendable {
        case connected, refused, timedOut
        case failed(Int32)
    }

    /// A TCP connect from `source` to `destination:port` (IPv4), waiting at most `milliseconds`.
    static func connect(from source: String, to destination: String, port: UInt16, milliseconds: Int32) -> Outcome {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(errno) }
        defer { close(fd) }
        guard bind(fd, address(source, port: 0)) == 0 else { return .failed(errno) }
        if connect(fd, address(destination, port: port)) != 0, errno != EINPROGRESS { return .failed(errno) }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, milliseconds) > 0 else { return .timedOut }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        switch error {
        case 0: return .connected
        case ECONNREFUSED: return .refused
        default: return .failed(error)
        }
    }

    /// Sends one UDP datagram from `source` to `destination:port` (IPv4).
    static func sendDatagram(from source: String, to destination: String, port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard bind(fd, address(source, port: 0)) == 0, connect(fd, address(destination, port: port)) == 0 else { return false }
        return send(fd, "probe", 5, 0) == 5
    }

    /// Sends one UDP datagram from `source` to the broadcast address `destination:port` (IPv4).
    static func sendBroadcast(from source: String, to destination: String, port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else { return false }
        guard bind(fd, address(source, port: 0)) == 0, connect(fd, address(destination, port: port)) == 0 else { return false }
        return send(fd, "probe", 5, 0) == 5
    }

    /// Whether a datagram from `source` to `destination:port` is answered with ICMP port unreachable
    /// (ECONNREFUSED on the connected socket) within `milliseconds`.
    static func datagramIsRefused(from source: String, to destination: String, port: UInt16, milliseconds: Int32) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard bind(fd, address(source, port: 0)) == 0, connect(fd, address(destination, port: port)) == 0, send(fd, "probe", 5, 0) == 5 else {
            return false
        }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, milliseconds) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) < 0 && errno == ECONNREFUSED
    }

    /// A listening TCP socket on every IPv4 address; the kernel completes handshakes into its backlog.
    static func listen(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, bind(fd, address("0.0.0.0", port: port)) == 0, Glibc.listen(fd, 16) == 0 else { return -1 }
        return fd
    }

    private static func bind(_ fd: Int32, _ address: sockaddr_in) -> Int32 {
        withUnsafeBytes(of: address) { Glibc.bind(fd, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
    }

    private static func connect(_ fd: Int32, _ address: sockaddr_in) -> Int32 {
        withUnsafeBytes(of: address) { Glibc.connect(fd, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
    }

    private static func address(_ text: String, port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, text, &address.sin_addr)
        return address
    }
}
