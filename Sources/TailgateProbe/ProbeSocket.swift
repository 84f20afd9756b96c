import Glibc
import NIOCore
import TailgateSystem

/// A non-blocking stream socket for one check: every wait is a `poll` bounded by the check's
/// deadline, and the descriptor is closed when the object goes away.
///
/// Sends use `MSG_NOSIGNAL`, so a peer that has gone away yields `EPIPE` rather than a SIGPIPE
/// that would end the process.
final class ProbeSocket {
    private let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    /// Connects to `address`, waiting at most until `deadline`.
    static func connect(to address: SocketAddress, deadline: ProbeDeadline) throws(ProbeError) -> ProbeSocket {
        do throws(SystemCallError) {
            return ProbeSocket(descriptor: try OutgoingConnection.connect(to: address, deadline: deadline.uptime))
        } catch {
            throw Self.error(error.errno)
        }
    }

    /// Sends all of `bytes`, waiting for room at most until `deadline`.
    func send(_ bytes: ArraySlice<UInt8>, deadline: ProbeDeadline) throws(ProbeError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { buffer in
                Glibc.send(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            let code = errno
            switch code {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: try wait(for: Int16(POLLOUT), deadline: deadline)
            default: throw Self.error(code)
            }
        }
    }

    /// Sends what fits in the socket's buffer now, without waiting; for the last words of a
    /// connection, such as a TLS close_notify, whose loss does not matter.
    func sendWithoutWaiting(_ bytes: ArraySlice<UInt8>) {
        _ = bytes.withUnsafeBytes { buffer in
            Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
    }

    /// Receives up to `buffer.count` bytes into `buffer`, waiting at most until `deadline`;
    /// returns 0 when the peer has closed the connection.
    func receive(into buffer: inout [UInt8], deadline: ProbeDeadline) throws(ProbeError) -> Int {
        while true {
            let received = buffer.withUnsafeMutableBytes { buffer in
                recv(descriptor, buffer.baseAddress, buffer.count, 0)
            }
            if received >= 0 { return received }
            let code = errno
            switch code {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: try wait(for: Int16(POLLIN), deadline: deadline)
            default: throw Self.error(code)
            }
        }
    }

    /// Reads and drops whatever has already arrived (up to 64 KiB), so that closing the socket
    /// sends a FIN rather than the RST that unread data would cause.
    func discardReceived() {
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 {
            let received = scratch.withUnsafeMutableBytes { buffer in
                recv(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            }
            if received <= 0 { return }
        }
    }

    /// Waits until the socket is ready for `events` (or has an error or hang-up to report,
    /// which the next call then returns), at most until `deadline`.
    private func wait(for events: Int16, deadline: ProbeDeadline) throws(ProbeError) {
        do throws(SystemCallError) {
            try OutgoingConnection.wait(descriptor, for: events, until: deadline.uptime)
        } catch {
            throw Self.error(error.errno)
        }
    }

    /// The failure a socket error stands for.
    static func error(_ code: Int32) -> ProbeError {
        switch code {
        case ECONNREFUSED: return ProbeError(.refused)
        case ETIMEDOUT: return ProbeError(.timeout)
        default: return ProbeError(.network(String(cString: strerror(code))))
        }
    }
}
