import NIOCore

/// What routing needs from an HTTP/1.x request head: the method, the target, the version and the Host.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request target as sent (`/path?query`, or absolute-form).
    public var target: String
    /// `HTTP/1.0` or `HTTP/1.1`.
    public var version: String
    /// The Host header, lower case, without a port or a trailing dot; nil when an HTTP/1.0 request has none.
    public var host: String?
    /// Bytes of the head, through the empty line.
    public var byteCount: Int

    public init(method: String, target: String, version: String, host: String?, byteCount: Int) {
        self.method = method
        self.target = target
        self.version = version
        self.host = host
        self.byteCount = byteCount
    }

    /// The target's path and query in origin form: an absolute-form target loses its scheme and authority.
    public var pathAndQuery: String {
        guard !target.hasPrefix("/") else { return target }
        let bytes = Array(target.utf8)
        guard let scheme = (0..<max(0, bytes.count - 2)).first(where: { bytes[$0] == UInt8(ascii: ":") && bytes[$0 + 1] == UInt8(ascii: "/") && bytes[$0 + 2] == UInt8(ascii: "/") })
        else { return "/" }
        let rest = Substring(String(decoding: bytes[(scheme + 3)...], as: UTF8.self))
        guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        let tail = String(rest[slash...])
        return tail.hasPrefix("?") ? "/" + tail : tail
    }
}

/// Why a request head was refused; the raw value is the connection log's reason.
public enum HTTPRequestHeadError: String, Error, Sendable {
    /// More than the limit without the end of the head (431).
    case tooLarge = "request_head_too_large"
    /// Not an HTTP/1.x request line or header (400).
    case malformed = "malformed_request"
    /// HTTP/1.1 without Host (400).
    case missingHost = "missing_host"
    /// Two Host headers (400; RFC 9112 §3.2).
    case duplicateHost = "duplicate_host"
    /// A Host that is not a host name or address (400).
    case badHost = "bad_host"
    /// A request line without a version: HTTP/0.9 (400).
    case http09 = "http_0_9"
    /// A TLS ClientHello sent to a plain HTTP port (400).
    case tls = "tls_on_plain_http"

    /// The status an HTTP client is answered with.
    public var status: Int { self == .tooLarge ? 431 : 400 }
}

/// Reads an HTTP/1.x request head from the start of a buffer without consuming it: nil while the head is
/// incomplete and under the limit. Lines may end in CRLF or a bare LF (as nginx accepts).
public struct HTTPRequestHeadParser: Sendable {
    public let limit: Int

    public init(limit: Int = 8_192) {
        self.limit = limit
    }

    public func parse(_ buffer: ByteBuffer) throws(HTTPRequestHeadError) -> HTTPRequestHead? {
        let view = buffer.readableBytesView
        if view.first == 0x16 { throw .tls }
        // The end of the head: an empty line.
        var end: Int?
        var lineStart = view.startIndex
        var index = view.startIndex
        let scanEnd = min(view.endIndex, view.startIndex + limit)
        while index < scanEnd {
            if view[index] == UInt8(ascii: "\n") {
                let length = index - lineStart - (index > lineStart && view[index - 1] == UInt8(ascii: "\r") ? 1 : 0)
                if length == 0, lineStart > view.startIndex {
                    end = index + 1
                    break
                }
                if length == 0 { throw .malformed }  // an empty first line
                lineStart = index + 1
            }
            index += 1
        }
        guard let end else {
            if view.count >= limit { throw .tooLarge }
            // A request line already complete and without a version is HTTP/0.9, which has no head to wait for.
            if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                var line = view[view.startIndex..<newline]
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                try Self.requestLine(line)
            }
            return nil
        }
        var lines: [ArraySlice<UInt8>] = []
        var start = view.startIndex
        for position in view.startIndex..<end where view[position] == UInt8(ascii: "\n") {
            var line = Array(view[start..<position])[...]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            lines.append(line)
            start = position + 1
        }
        let (method, target, version) = try Self.requestLine(ArraySlice(lines[0]))
        var host: String?
        var hosts = 0
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[line.startIndex..<colon].allSatisfy(Self.isTokenByte)
            else { throw .malformed }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            guard name.lowercased() == "host" else { continue }
            hosts += 1
            guard hosts == 1 else { throw .duplicateHost }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces()
            host = try Self.normalizeHost(value)
        }
        if host == nil, version == "HTTP/1.1" { throw .missingHost }
        return HTTPRequestHead(method: method, target: target, version: version, host: host, byteCount: end - view.startIndex)
    }

    @discardableResult
    /// The request line, without its line ending.
    private static func requestLine<C: Collection<UInt8>>(_ raw: C) throws(HTTPRequestHeadError) -> (String, String, String) {
        let line = Array(raw)
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let method = parts.first, !method.isEmpty, method.allSatisfy(isTokenByte) else { throw .malformed }
        if parts.count == 2 { throw .http09 }
        guard parts.count == 3, !parts[1].isEmpty, parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformed }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw .malformed }
        return (String(decoding: method, as: UTF8.self), String(decoding: parts[1], as: UTF8.self), version)
    }

    /// `Example.COM.:8080` → `example.com`; `[2001:db8::1]:80` → `[2001:db8::1]`.
    static func normalizeHost(_ value: String) throws(HTTPRequestHeadError) -> String {
        var host = Substring(value.lowercased())
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .badHost }
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { throw .badHost }
            host = host[...close]
        } else if let colon = host.lastIndex(of: ":") {
            guard host[host.index(after: colon)...].allSatisfy(\.isNumber) else { throw .badHost }
            host = host[..<colon]
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        // No empty label: "a..b", ".a" and "a.." (after the one trailing dot) name nothing.
        guard !host.hasPrefix("."), !host.hasSuffix("."), !host.contains("..") else { throw .badHost }
        guard !host.isEmpty, host.utf8.count <= 255,
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._[]:".contains($0)) })
        else { throw .badHost }
        return String(host)
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" { view.removeLast() }
        return String(view)
    }
}
