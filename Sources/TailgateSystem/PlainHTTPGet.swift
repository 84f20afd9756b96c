import Glibc
import NIOCore

/// One HTTP/1.1 GET over a plain TCP socket, read to the end, within a deadline and a size limit: how
/// `tailgate status` asks the health endpoint and the CrowdSec bouncer asks the Local API. Both talk to a
/// local service by an `http://` URL; neither needs TLS, redirects or a kept-alive connection.
public enum PlainHTTPGet {
    /// Why a GET failed, said for an operator (the URL and the reason).
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// An `http://host[:port][/base]` URL, taken apart.
    public struct Endpoint: Sendable, Equatable {
        /// As written in the Host header: `host:port`, `[v6]:port`, or the host alone.
        public var authority: String
        public var host: String
        public var port: Int
        /// The path before the request's own, without a trailing slash ("" for none).
        public var basePath: String

        /// Parses `url` (a bare `host:port` is taken as `http://host:port`).
        public init(_ url: String) throws(Failure) {
            let full = url.contains("://") ? url : "http://" + url
            guard full.hasPrefix("http://") else { throw Failure(description: "\(url): only http:// URLs are supported") }
            let rest = full.dropFirst("http://".count)
            authority = String(rest.prefix { $0 != "/" })
            let path = rest.dropFirst(authority.count)
            basePath = path.hasSuffix("/") ? String(path.dropLast()) : String(path)
            var hostPart = Substring(authority), portText: Substring?
            if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
                hostPart = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            }
            guard !hostPart.isEmpty, hostPart.hasPrefix("[") == hostPart.hasSuffix("]") else {
                throw Failure(description: "\(url): not a URL like http://127.0.0.1:9180")
            }
            host = hostPart.hasPrefix("[") ? String(hostPart.dropFirst().dropLast()) : String(hostPart)
            guard let port = portText.map({ Int($0) }) ?? 80, (1...65_535).contains(port) else {
                throw Failure(description: "\(url): invalid port \"\(portText ?? "")\" (1–65535)")
            }
            self.port = port
        }
    }

    /// An answer: its status, its header lines (after the status line) and its body (de-chunked).
    public struct Response: Sendable {
        public var status: Int
        public var headerLines: [String]
        public var body: [UInt8]
    }

    /// GETs `path` (after the endpoint's base path) with `headers`, and reads the answer to the end of the
    /// connection: connected within `connectWithin`, the whole answer (at most `limit` bytes) within
    /// `answerWithin` of the start. A reset after the answer began ends it (the caller judges what came).
    public static func get(
        _ endpoint: Endpoint, path: String, headers: [(String, String)] = [], connectWithin: TimeAmount, answerWithin: TimeAmount, limit: Int
    ) throws(Failure) -> Response {
        let started = NIODeadline.now()
        let deadline = started + answerWithin
        let url = "http://\(endpoint.authority)\(endpoint.basePath)"
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port)
        } catch {
            throw Failure(description: "\(url): cannot resolve \(endpoint.host): \(error)")
        }
        let descriptor: CInt
        do throws(SystemCallError) {
            descriptor = try OutgoingConnection.connect(to: address, deadline: started + connectWithin)
        } catch {
            let seconds = connectWithin.nanoseconds / 1_000_000_000
            let reason = error.errno == ETIMEDOUT ? "no answer within \(seconds) s" : SystemCallError.errorText(error.errno)
            throw Failure(description: "cannot reach \(url): \(reason)")
        }
        defer { Glibc.close(descriptor) }
        var request = "GET \(endpoint.basePath)\(path) HTTP/1.1\r\nHost: \(endpoint.authority)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "Connection: close\r\n\r\n"
        var unsent = Array(request.utf8)[...]
        while !unsent.isEmpty {
            let sent = unsent.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 { unsent = unsent.dropFirst(sent); continue }
            if sent < 0, errno == EAGAIN || errno == EINTR, (try? OutgoingConnection.wait(descriptor, for: Int16(POLLOUT), until: deadline)) != nil {
                continue
            }
            throw Failure(description: "\(url): sending the request: \(SystemCallError("send"))")
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let received = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received > 0 {
                response += chunk[0..<received]
                guard response.count <= limit else { throw Failure(description: "\(url): the answer is larger than \(limit) bytes") }
                continue
            }
            if received == 0 { break }
            let error = errno
            if error == ECONNRESET, !response.isEmpty { break }
            guard error == EAGAIN || error == EINTR else {
                throw Failure(description: "\(url): reading the answer: \(SystemCallError.errorText(error))")
            }
            do throws(SystemCallError) {
                try OutgoingConnection.wait(descriptor, for: Int16(POLLIN), until: deadline)
            } catch {
                throw Failure(description: "\(url): the answer did not end within \(answerWithin.nanoseconds / 1_000_000_000) s")
            }
        }
        return try parse(response, url: url)
    }

    /// The status, header lines and body of a whole answer (the body de-chunked when `Transfer-Encoding:
    /// chunked`).
    public static func parse(_ response: [UInt8], url: String) throws(Failure) -> Response {
        guard let end = response.indices.dropLast(3).first(where: {
            response[$0] == 13 && response[$0 + 1] == 10 && response[$0 + 2] == 13 && response[$0 + 3] == 10
        }) else {
            throw Failure(description: "\(url): no complete HTTP answer")
        }
        let lines = String(decoding: response[..<end], as: UTF8.self).split(separator: "\r\n").map(String.init)
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(description: "\(url): not an HTTP answer")
        }
        let headerLines = Array(lines.dropFirst())
        var body = Array(response[(end + 4)...])
        let chunked = headerLines.contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        if chunked {
            var decoded: [UInt8] = []
            var rest = body[...]
            while let lineEnd = rest.indices.dropLast().first(where: { rest[$0] == 13 && rest[$0 + 1] == 10 }) {
                let sizeText = String(decoding: rest[rest.startIndex..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.filter { $0 != " " && $0 != "\t" }, radix: 16), size >= 0 else {
                    throw Failure(description: "\(url): bad chunked body")
                }
                if size == 0 { break }
                let start = lineEnd + 2
                guard start + size <= rest.endIndex else { throw Failure(description: "\(url): truncated chunked body") }
                decoded += rest[start..<(start + size)]
                rest = rest[min(rest.endIndex, start + size + 2)...]
            }
            body = decoded
        }
        return Response(status: status, headerLines: headerLines, body: body)
    }
}
