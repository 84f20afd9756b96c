import CNftables
import Glibc

/// A NETLINK_NETFILTER socket (libmnl) for one operation. Not shared between threads.
final class NetlinkSocket {
    private let handle: OpaquePointer
    /// Our netlink port id; replies carry it.
    let portID: UInt32
    /// What the socket is used for, for error messages (e.g. "applying table inet tailgate").
    let operation: String
    private var sequence: UInt32
    private var buffer = [UInt8](repeating: 0, count: 1 << 18)
    /// How long to wait for each reply.
    static let replyTimeoutMilliseconds: Int32 = 5_000

    init(operation: String) throws(FirewallError) {
        self.operation = operation
        guard let handle = mnl_socket_open(NETLINK_NETFILTER) else {
            let code = errno
            throw code == EPROTONOSUPPORT
                ? .unavailable("\(operation): the kernel has no NETLINK_NETFILTER (nfnetlink)")
                : .from(errno: code, during: "\(operation): socket(AF_NETLINK, NETLINK_NETFILTER)")
        }
        guard mnl_socket_bind(handle, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let code = errno
            mnl_socket_close(handle)
            throw .from(errno: code, during: "\(operation): bind(AF_NETLINK)")
        }
        self.handle = handle
        portID = mnl_socket_get_portid(handle)
        sequence = UInt32(truncatingIfNeeded: time(nil))
        // Error strings from the kernel with each error; harmless where unsupported.
        var one: Int32 = 1
        _ = mnl_socket_setsockopt(handle, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        mnl_socket_close(handle)
    }

    /// Reserves `count` consecutive sequence numbers and returns the first.
    func reserveSequences(_ count: Int) -> UInt32 {
        let first = sequence
        sequence &+= UInt32(count)
        return first
    }

    /// Sends one buffer with one sendmsg (a batch must never be split).
    func send(_ bytes: [UInt8]) throws(FirewallError) {
        let sent = bytes.withUnsafeBytes { mnl_socket_sendto(handle, $0.baseAddress, $0.count) }
        guard sent == bytes.count else {
            throw .from(errno: sent < 0 ? errno : EMSGSIZE, during: "\(operation): sendmsg(netlink)")
        }
    }

    /// Raises the socket buffers for a batch of `size` bytes answered by `acknowledgements` messages
    /// (the kernel drops acks that do not fit). FORCE needs CAP_NET_ADMIN; the plain option is the fallback.
    func prepareBuffers(forBatchOf size: Int, acknowledgements: Int) {
        let fd = mnl_socket_get_fd(handle)
        let defaultSize = 208 * 1024
        for (option, force, wanted) in [(SO_SNDBUF, SO_SNDBUFFORCE, size + 64 * 1024), (SO_RCVBUF, SO_RCVBUFFORCE, acknowledgements * 1024)]
        where wanted > defaultSize {
            var value = Int32(clamping: wanted)
            let length = socklen_t(MemoryLayout<Int32>.size)
            if setsockopt(fd, SOL_SOCKET, force, &value, length) != 0 {
                _ = setsockopt(fd, SOL_SOCKET, option, &value, length)
            }
        }
    }

    /// Waits up to `timeout` ms for replies and hands over the messages received; false on timeout.
    func receive(timeout: Int32, _ body: ([NetlinkMessage]) throws(FirewallError) -> Void) throws(FirewallError) -> Bool {
        var poller = pollfd(fd: mnl_socket_get_fd(handle), events: Int16(POLLIN), revents: 0)
        var ready: Int32
        repeat {
            ready = poll(&poller, 1, timeout)
        } while ready < 0 && errno == EINTR
        guard ready >= 0 else { throw .from(errno: errno, during: "\(operation): poll(netlink)") }
        guard ready > 0 else { return false }
        let handle = handle
        let received = buffer.withUnsafeMutableBytes { mnl_socket_recvfrom(handle, $0.baseAddress, $0.count) }
        guard received >= 0 else { throw .from(errno: errno, during: "\(operation): recvmsg(netlink)") }
        var outcome: Result<Void, FirewallError> = .success(())
        buffer.withUnsafeBytes { raw in
            do throws(FirewallError) {
                try body(NetlinkMessage.messages(in: UnsafeRawBufferPointer(rebasing: raw[0..<received])))
            } catch {
                outcome = .failure(error)
            }
        }
        try outcome.get()
        return true
    }
}
