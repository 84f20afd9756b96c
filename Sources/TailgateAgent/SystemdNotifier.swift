import Glibc
import Synchronization
import TailgateSystem

/// Whether a notifier (and its copies) has been silenced.
private final class SilenceSwitch: Sendable {
    let flag = Atomic<Bool>(false)
}

/// sd_notify(3) without libsystemd: datagrams to the socket named by NOTIFY_SOCKET.
///
/// Does nothing when NOTIFY_SOCKET is unset (not started by systemd with Type=notify), and nothing once
/// `silence()` was called (the process handed the service over to its successor, the main process now).
public struct SystemdNotifier: Sendable {
    private let path: [UInt8]?
    private let silenced = SilenceSwitch()

    public init(environment value: String? = SystemEnvironment.value("NOTIFY_SOCKET")) {
        guard let value, value.hasPrefix("/") || value.hasPrefix("@"), value.utf8.count < 108 else {
            path = nil
            return
        }
        var bytes = Array(value.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        path = bytes
    }

    public var isEnabled: Bool { path != nil }

    /// From now on sends nothing: systemd takes messages only from the main process, which this is no more.
    public func silence() {
        silenced.flag.store(true, ordering: .relaxed)
    }

    /// Sends `state` with `descriptors` attached (sd_pid_notify_with_fds): `FDSTORE=1` keeps them in the
    /// unit's file descriptor store. False when not sent.
    @discardableResult
    public func send(_ state: String, descriptors: [CInt]) -> Bool {
        guard let path, !silenced.flag.load(ordering: .relaxed), !descriptors.isEmpty else { return false }
        return ProcessSpawn.send(Array(state.utf8), to: path, descriptors: descriptors)
    }

    /// Sends one state string, e.g. "READY=1\nSTATUS=serving". Errors are ignored, as sd_notify's callers do.
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard let path, !silenced.flag.load(ordering: .relaxed) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == message.count
    }

    /// The watchdog interval systemd asked for (WATCHDOG_USEC), if it is meant for this process. (A process
    /// started by an upgrade hand-over has no WATCHDOG_PID: its predecessor removed it, as the pid is not known
    /// before the spawn, and the successor becomes the main process.)
    public static func watchdogInterval() -> Duration? {
        guard let text = SystemEnvironment.value("WATCHDOG_USEC"), let microseconds = Int64(text), microseconds > 0 else { return nil }
        if let pidText = SystemEnvironment.value("WATCHDOG_PID"), let pid = Int32(pidText), pid != getpid() { return nil }
        return .microseconds(microseconds)
    }

    /// CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC.
    public static func monotonicMicroseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000 + UInt64(spec.tv_nsec) / 1_000
    }
}
