import Glibc
import NIOCore
import TailgateAgent
import TailgateConfig
import TailgateSystem

/// `tailgate status`: fetches the endpoint's /status as a table, over a plain blocking socket.
public enum StatusClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The endpoint's base URL from a configuration's `[health] listen` (its first address; a wildcard is
    /// asked on loopback).
    ///
    /// Only that key is read, so a file with errors elsewhere (being edited while the agent serves the last
    /// good one) still says where the endpoint is; without it, the file's errors say why.
    public static func base(configPath: String) throws(Failure) -> String {
        guard let bytes = try? ConfigurationFile.readAll(configPath), let address = ConfigurationLoader.healthAddress(bytes: bytes),
              let port = address.port, let ip = address.ipAddress else {
            do {
                _ = try ConfigurationFile.load(path: configPath)
            } catch {
                throw Failure(description: error.description)
            }
            throw Failure(description: "\(configPath) has no [health] listen; tailgate status asks the health endpoint")
        }
        switch ip {
        case "0.0.0.0": return "http://127.0.0.1:\(port)"
        case "::": return "http://[::1]:\(port)"
        default:
            if case .v6 = address { return "http://[\(ip)]:\(port)" }
            return "http://\(ip):\(port)"
        }
    }

    /// `base` is like "http://127.0.0.1:9180", or just "127.0.0.1:9180"; returns the body of GET /status?format=text,
    /// or of GET /status (the JSON form) with `json`.
    public static func fetchText(base given: String, json: Bool = false) throws(Failure) -> String {
        let base = given.contains("://") ? given : "http://" + given
        guard base.hasPrefix("http://") else { throw Failure(description: "\(given): only http:// URLs are supported") }
        let hostPort = base.dropFirst(7).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        let address: SocketAddress
        do {
            let colon = hostPort.lastIndex(of: ":")
            let host = colon.map { String(hostPort[..<$0]) } ?? hostPort
            let portText = colon.map { String(hostPort[hostPort.index(after: $0)...]) }
            guard !host.isEmpty, !host.hasPrefix("[") || host.hasSuffix("]") else {
                throw Failure(description: "\(base): not a URL like http://127.0.0.1:9180")
            }
            let port = portText.map { Int($0) } ?? 80
            guard let port, (1...65_535).contains(port) else {
                throw Failure(description: "\(base): invalid port \"\(portText ?? "")\" (1–65535)")
            }
            let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
            address = try SocketAddress.makeAddressResolvingHost(bare, port: port)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(base): cannot resolve: \(error)")
        }
        let fd: CInt
        do throws(SystemCallError) {
            fd = try OutgoingConnection.connect(to: address, deadline: .now() + .seconds(5))
        } catch {
            let reason = error.errno == ETIMEDOUT ? "no answer within 5 s" : SystemCallError.errorText(error.errno)
            throw Failure(description: "cannot reach \(base): \(reason) (is [health] listen set, and tailgate running?)")
        }
        defer { close(fd) }
        // The rest waits in the calls themselves, each for at most 5 s.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET /status\(json ? "" : "?format=text") HTTP/1.1\r\nHost: \(hostPort)\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // The whole answer within 10 s and 4 MiB: whatever else listens on that port must not hold the command.
        let deadline = ContinuousClock.now + .seconds(10)
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response.append(contentsOf: chunk[0..<count])
            guard ContinuousClock.now < deadline, response.count <= 4 << 20 else {
                throw Failure(description: "\(base): the answer is too slow or too large; is this tailgate's health endpoint?")
            }
        }
        let text = String(decoding: response, as: UTF8.self)
        let separator = Array("\r\n\r\n".utf8)
        guard let end = (0..<max(0, response.count - 3)).first(where: { Array(response[$0..<$0 + 4]) == separator }) else {
            throw Failure(description: "\(base): no HTTP response")
        }
        guard text.hasPrefix("HTTP/1.1 200") || text.hasPrefix("HTTP/1.0 200") else {
            throw Failure(description: "\(base)/status: \(text.prefix { $0 != "\r" })")
        }
        let body = String(decoding: response[(end + 4)...], as: UTF8.self)
        guard json ? body.hasPrefix("{") && body.contains("\"generation\"") : body.hasPrefix("tailgate ") else {
            throw Failure(description: "\(base): answered, but not as tailgate's health endpoint does (is [health] listen this address?)")
        }
        return body
    }
}
