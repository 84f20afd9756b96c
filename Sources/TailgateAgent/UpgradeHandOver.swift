import Glibc
import Logging
import NIOPosix
import TailgateSystem

/// An upgrade without a blip (SIGUSR2, as nginx's binary upgrade): the running agent starts the binary on
/// disk — after `apt upgrade`, the new version — and passes it every listening socket. The new process
/// applies the configuration on those sockets, tells its predecessor it is ready, and is told back once it
/// is the main process (systemd is sent `MAINPID=`); the predecessor then stops accepting and drains its
/// connections (drain_timeout). Clients are never refused: a socket is open in one process or both
/// throughout. If the new process fails (a bad file, a crash) or is not ready within `readyTimeout`, the
/// running agent says why and serves on.
///
/// The two talk over a socket pair, one line each way: "ready" from the successor, "main" back.
enum UpgradeHandOver {
    static let readyTimeout: Duration = .seconds(60)
    /// The variable naming the successor's end of the pair.
    static let channelVariable = "TAILGATE_UPGRADE_FD"

    /// What the predecessor learns from the successor.
    enum Outcome {
        case ready(pid_t)
        case failed(String)
    }

    /// The running binary's path, read at start: once dpkg replaces the file, /proc/self/exe names the
    /// deleted one, and the hand-over must start the new one.
    static let executablePath: String = {
        var buffer = [CChar](repeating: 0, count: 4_096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "/usr/bin/tailgate" }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? String(path.dropLast(" (deleted)".count)) : path
    }()

    /// Starts the successor with `sockets` and waits (blocking: run it on a thread of its own) until it is
    /// ready, has failed, or `readyTimeout` passed. On `.ready`, the caller makes it the main process and
    /// calls `confirm`.
    static func start(
        configPath: String, sockets: [(name: String, descriptor: CInt)], logger: Logger
    ) -> (Outcome, channel: CInt) {
        var pair: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return (.failed("\(SystemCallError("socketpair"))"), -1)
        }
        let (mine, theirs) = (pair[0], pair[1])
        var environment: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            let name = text.prefix { $0 != "=" }
            // WATCHDOG_PID names this process; the successor, the main process soon, takes WATCHDOG_USEC as its own.
            if !["WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "TAILGATE_LISTEN_FDS", channelVariable].contains(String(name)) {
                environment.append(text)
            }
            pointer += 1
        }
        environment.append("TAILGATE_LISTEN_FDS=" + sockets.map { "\($0.descriptor)=\($0.name)" }.joined(separator: ","))
        environment.append("\(channelVariable)=\(theirs)")
        let path = executablePath
        let pid: pid_t
        do {
            pid = try ProcessSpawn.spawn(path, arguments: [path, "run", "--config", configPath], environment: environment,
                                         keeping: sockets.map(\.descriptor) + [theirs])
        } catch {
            close(mine); close(theirs)
            return (.failed("\(error)"), -1)
        }
        close(theirs)
        logger.info("upgrade: started the binary on disk with the listening sockets; waiting until it is ready", metadata: [
            "pid": .stringConvertible(pid), "binary": .string(path), "sockets": .stringConvertible(sockets.count),
        ])
        let line = readLine(mine, timeout: readyTimeout)
        if line == "ready" { return (.ready(pid), mine) }
        close(mine)
        if line == nil {
            // No answer in time: the successor is stuck; it must not linger holding the sockets.
            kill(pid, SIGKILL)
        }
        var status: CInt = 0
        waitpid(pid, &status, 0)
        let how = (status & 0x7f) == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(status & 0x7f)"
        return (.failed(line == nil ? "not ready within \(readyTimeout.wholeMilliseconds / 1_000) s; killed it" : "the new process \(how) before it was ready (its log says why)"), -1)
    }

    /// Tells the successor it is the main process now; closes the channel.
    static func confirm(_ channel: CInt) {
        _ = "main\n".utf8CString.withUnsafeBufferPointer { write(channel, $0.baseAddress, $0.count - 1) }
        close(channel)
    }

    /// In the successor: says "ready" to the predecessor and waits (blocking) until it is the main process,
    /// at most 10 s (a predecessor that died meanwhile answers nothing; the successor serves all the same).
    static func reportReady(_ channel: CInt) {
        _ = "ready\n".utf8CString.withUnsafeBufferPointer { write(channel, $0.baseAddress, $0.count - 1) }
        _ = readLine(channel, timeout: .seconds(10))
        close(channel)
    }

    /// The successor's end of the pair, from the environment (removed from it).
    static func channelFromEnvironment() -> CInt? {
        guard let text = SystemEnvironment.take(channelVariable), let channel = CInt(text), channel > 2,
              fcntl(channel, F_SETFD, FD_CLOEXEC) == 0 else { return nil }
        return channel
    }

    /// One line from `descriptor` within `timeout`; nil on timeout, "" at end of stream.
    private static func readLine(_ descriptor: CInt, timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        var bytes: [UInt8] = []
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let left = max(0, Int((deadline - ContinuousClock.now).wholeMilliseconds))
            let ready = poll(&poller, 1, CInt(min(left, 1_000)))
            if ready < 0, errno != EINTR { return "" }
            guard ready > 0 else { continue }
            var byte: UInt8 = 0
            let count = read(descriptor, &byte, 1)
            if count == 0 { return String(decoding: bytes, as: UTF8.self) }
            if count < 0 { if errno == EINTR { continue }; return "" }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return nil
    }
}
