import Glibc
import Logging
import TailgateFirewall
import TailgateSystem

/// The local control socket (`[bans] control_socket`): a Unix stream socket, mode 0660 (the agent's user
/// and group: root and members of the `tailgate` group), never a network API. One request per connection,
/// one line of at most 1 KiB, read within two seconds:
///
///     add ADDRESS[/PREFIX] SECONDS|- COMMENT…     → "ok: banned …" or "error: …"
///     remove ADDRESS[/PREFIX]                      → "ok: lifted …" or "error: …"
///     list                                          → one line per ban (address, time left, duration,
///                                                     comment; tab-separated), then "ok: N bans"
///
/// Served by one thread, one client at a time: a client that sends nothing holds it for two seconds at
/// most. The peer's uid and pid (SO_PEERCRED) go into the log and the ban's comment.
final class ControlSocket: Sendable {
    let path: String
    private let descriptor: CInt

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Binds `path` (a stale socket file left by a crash is replaced; any other file is not) and starts serving.
    init(path: String, desk: BanDesk, logger: Logger) throws(Failure) {
        self.path = path
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(description: "\(path): path too long for a Unix socket") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw Failure(description: "\(path) exists and is not a socket; not replacing it") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(AF_UNIX): \(SystemCallError("socket"))") }
        // Created with no permission for others from the start (the umask is per process: set it around bind).
        let previousMask = umask(0o117)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(previousMask)
        guard bound == 0 else {
            let error = SystemCallError("bind")
            close(fd)
            throw Failure(description: "\(path): \(error)")
        }
        chmod(path, 0o660)
        guard listen(fd, 16) == 0 else {
            let error = SystemCallError("listen")
            close(fd)
            throw Failure(description: "\(path): \(error)")
        }
        descriptor = fd
        let listening = fd
        guard NamedThread.startDetached(name: "control", { Self.serve(listening, desk: desk, logger: logger) }) else {
            close(fd)
            throw Failure(description: "cannot start the control socket's thread")
        }
    }

    private static func serve(_ listening: CInt, desk: BanDesk, logger: Logger) {
        while true {
            let client = accept(listening, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE {
                    if errno != EINTR { usleep(100_000) }
                    continue
                }
                logger.error("control socket: accept failed: \(SystemCallError("accept4")); no longer serving")
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let peer = Self.peer(of: client)
            let reply: String
            if let line = Self.readLine(client) {
                reply = ControlRequest.answer(line, desk: desk, peer: peer)
            } else {
                reply = "error: expected one request line of at most 1024 bytes, ending in a newline, within 2s\n"
            }
            _ = Array(reply.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }

    /// `uid 0 pid 1234`, from SO_PEERCRED.
    private static func peer(of client: CInt) -> String {
        UnixPeer.describe(client) ?? "unknown peer"
    }

    /// The request line without its newline; nil when none came whole within the limits.
    private static func readLine(_ client: CInt) -> String? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1_024)
        while buffer.count <= 1_024 {
            let received = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { return nil }
            buffer += chunk[0..<received]
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                guard newline <= 1_024 else { return nil }
                return String(decoding: buffer[..<newline], as: UTF8.self)
            }
        }
        return nil
    }
}

/// The control protocol's requests (see `ControlSocket`), answered by the `BanDesk`.
enum ControlRequest {
    static func answer(_ line: String, desk: BanDesk, peer: String) -> String {
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        do {
            switch words.first {
            case "add" where words.count >= 3:
                let duration: Duration?
                if words[2] == "-" {
                    duration = nil
                } else if let seconds = Int64(words[2]), seconds > 0, seconds <= 100 * 365 * 86_400 {
                    duration = .seconds(seconds)
                } else {
                    return "error: the duration is a number of seconds (or - for the default), found \"\(BanEntry.clean(String(words[2].prefix(64))))\"\n"
                }
                let comment = words.count > 3 ? words[3...].joined(separator: " ") : "tailgate ban (\(peer))"
                return "ok: " + (try desk.ban(words[1], for: duration, comment: comment)) + "\n"
            case "remove" where words.count == 2:
                return "ok: " + (try desk.lift(words[1], by: peer)) + "\n"
            case "list" where words.count == 1:
                let lines = try desk.list()
                return lines.map { $0 + "\n" }.joined() + "ok: \(lines.count) ban(s)\n"
            default:
                return "error: unknown request; expected add ADDRESS SECONDS|- COMMENT, remove ADDRESS, or list\n"
            }
        } catch {
            return "error: \(error)\n"
        }
    }
}
