import Foundation

/// A plain blocking TCP client for sending hand-made bytes (garbage, dribbles, spoofed headers).
public final class RawClient {
    public private(set) var fd: Int32

    public enum ClientError: Error { case socket(String) }

    public init(host: String, port: Int, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.socket("socket") }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let result = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else { abandon(); throw ClientError.socket("bind \(source)") }
        }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = UInt16(port).bigEndian
        remote.sin_addr.s_addr = inet_addr(host)
        let result = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            abandon()
            throw ClientError.socket("connect \(host):\(port): errno \(code)")
        }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Closes the socket of an initializer that is about to throw. The descriptor is forgotten first: a class
    /// whose initializer throws once its properties are set is deinitialized, and `deinit` closing the number
    /// again would close whatever another thread opened under it meanwhile (a probe's socket, once).
    private func abandon() {
        let descriptor = fd
        fd = -1
        Glibc.close(descriptor)
    }

    /// The client's own port.
    public var localPort: Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Sends all bytes; false if the peer has gone away.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads until at least `count` bytes arrived, EOF, or the timeout. Returns what arrived.
    public func receive(atLeast count: Int = 1, timeout: Double = 15) -> [UInt8] {
        setTimeout(timeout)
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while result.count < count {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received <= 0 { break }
            result.append(contentsOf: chunk[0..<received])
        }
        return result
    }

    /// Whether the peer closed the connection (EOF or reset) within `timeout` seconds, discarding any data.
    public func waitForClose(timeout: Double) -> Bool {
        setTimeout(timeout)
        var chunk = [UInt8](repeating: 0, count: 4_096)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received == 0 { return true }
            if received < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { return false }
                return true
            }
        }
        return false
    }

    /// How the peer ended the connection.
    public enum Ending: Sendable, Equatable { case finished, reset }

    /// Reads and drops data until the peer ends the connection, within `timeout` seconds: with a FIN
    /// (`finished`) or a reset; nil when it has not by then.
    public func waitForEnding(timeout: Double) -> Ending? {
        setTimeout(timeout)
        var chunk = [UInt8](repeating: 0, count: 4_096)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received == 0 { return .finished }
            if received < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
                return .reset
            }
        }
        return nil
    }

    /// Whether the peer has closed the connection (EOF or reset) by now, without waiting or reading data.
    public var isClosedByPeer: Bool {
        var byte: UInt8 = 0
        let received = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        return received == 0 || (received < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    public func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes with a TCP reset instead of a FIN (SO_LINGER with a zero timeout, then close).
    public func reset() {
        guard fd >= 0 else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    private func setTimeout(_ seconds: Double) {
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { close() }
}
