import Glibc
import TailgateAgent
import TailgateConfig
import TailgateSystem

/// `tailgate ban add|remove|list`: one request to the agent's control socket, its reply printed.
public enum BanClient {
    /// The reply's text and the exit code: 0 when its last line says `ok:`.
    public struct Outcome {
        public var text: String
        public var exitCode: Int32
    }

    /// The socket: `socket` when given, else the configuration's `[bans] control_socket`, else the default.
    public static func socketPath(explicit socket: String?, configPath: String?) -> String {
        if let socket { return socket }
        if let configPath, let (configuration, _) = try? ConfigurationFile.load(path: configPath) {
            return configuration.bans.controlSocket
        }
        return BanConfiguration.defaultControlSocket
    }

    /// `add ADDRESS SECONDS|- COMMENT`.
    public static func add(_ address: String, seconds: Int64?, reason: String?, socket: String) -> Outcome {
        let comment = reason.map { " " + $0.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ") } ?? ""
        return send("add \(address) \(seconds.map(String.init) ?? "-")\(comment)\n", to: socket)
    }

    public static func remove(_ address: String, socket: String) -> Outcome {
        send("remove \(address)\n", to: socket)
    }

    public static func list(socket: String) -> Outcome {
        send("list\n", to: socket)
    }

    /// Parses `--for` (`90s`, `1h`, `7d`) into seconds.
    public static func seconds(_ text: String) -> Int64? {
        guard let duration = try? DurationParser.parse(text), duration >= .seconds(1) else { return nil }
        return duration.wholeMilliseconds / 1_000
    }

    static func send(_ request: String, to path: String) -> Outcome {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return Outcome(text: "socket: \(SystemCallError("socket"))\n", exitCode: 1) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return Outcome(text: "\(path): path too long\n", exitCode: 1) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = SystemCallError("connect")
            let hint = error.errno == EACCES ? " (root or the tailgate group may use it)" : " (is the agent running with [bans] enabled = true?)"
            return Outcome(text: "cannot reach the control socket \(path): \(error)\(hint)\n", exitCode: 1)
        }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = Array(request.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { break }
            reply += chunk[0..<received]
        }
        let text = String(decoding: reply, as: UTF8.self)
        let last = text.split(separator: "\n").last ?? ""
        return Outcome(text: text.isEmpty ? "no reply from \(path)\n" : text, exitCode: last.hasPrefix("ok:") ? 0 : 1)
    }
}
