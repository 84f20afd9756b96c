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
        // Bytes, not Strings, until the few values kept: this runs for every connection of an http listener.
        try buffer.withUnsafeReadableBytes { (bytes: UnsafeRawBufferPointer) throws(HTTPRequestHeadError) -> HTTPRequestHead? in
            try Self.parse(bytes, limit: limit)
        }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, limit: Int) throws(HTTPRequestHeadError) -> HTTPRequestHead? {
        if bytes.first == 0x16 { throw .tls }
        let newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")
        /// The line from `start` up to the line feed at `lineFeed`, without a CR before it.
        func line(_ start: Int, _ lineFeed: Int) -> Range<Int> {
            start..<(lineFeed > start && bytes[lineFeed - 1] == carriageReturn ? lineFeed - 1 : lineFeed)
        }
        var requestLine: Range<Int>?  // nil until the first line is complete
        var method = "", target = "", version = ""
        var host: String?
        var hostSeen = false
        var lineStart = 0
        var index = 0
        let scanEnd = min(bytes.count, limit)
        while index < scanEnd {
            defer { index += 1 }
            guard bytes[index] == newline else { continue }
            let current = line(lineStart, index)
            lineStart = index + 1
            guard requestLine != nil else {
                if current.isEmpty { throw .malformed }  // an empty first line
                requestLine = current
                (method, target, version) = try Self.requestLine(bytes, current)
                continue
            }
            if current.isEmpty {
                if host == nil, version == "HTTP/1.1" { throw .missingHost }
                return HTTPRequestHead(method: method, target: target, version: version, host: host, byteCount: index + 1)
            }
            guard let colon = bytes[current].firstIndex(of: UInt8(ascii: ":")), colon > current.lowerBound,
                  bytes[current.lowerBound..<colon].allSatisfy(Self.isTokenByte)
            else { throw .malformed }
            guard colon - current.lowerBound == 4, Self.isHost(bytes, at: current.lowerBound) else { continue }
            guard !hostSeen else { throw .duplicateHost }
            hostSeen = true
            host = try Self.normalizeHost(bytes, (colon + 1)..<current.upperBound)
        }
        // (Every complete line was judged above: a request line without a version, HTTP/0.9, is refused as soon
        // as it ends, as it has no head to wait for.)
        if bytes.count >= limit { throw .tooLarge }
        return nil
    }

    /// The request line, without its line ending.
    @discardableResult
    private static func requestLine(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(HTTPRequestHeadError) -> (String, String, String) {
        let line = bytes[range]
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")), firstSpace > range.lowerBound,
              line[range.lowerBound..<firstSpace].allSatisfy(isTokenByte)
        else { throw .malformed }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: UInt8(ascii: " ")) else {
            // "GET /index.html": HTTP/0.9 (a method and a target, nothing else).
            if !rest.isEmpty, rest.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) { throw .http09 }
            throw .malformed
        }
        let target = line[(firstSpace + 1)..<secondSpace], versionBytes = line[(secondSpace + 1)...]
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformed }
        guard versionBytes.count == 8, versionBytes.elementsEqual("HTTP/1.1".utf8) || versionBytes.elementsEqual("HTTP/1.0".utf8) else {
            throw .malformed
        }
        return (
            String(decoding: line[range.lowerBound..<firstSpace], as: UTF8.self), String(decoding: target, as: UTF8.self),
            versionBytes.last == UInt8(ascii: "1") ? "HTTP/1.1" : "HTTP/1.0"
        )
    }

    /// Whether the four bytes at `start` spell "host" in any case.
    private static func isHost(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Bool {
        (bytes[start] | 0x20) == UInt8(ascii: "h") && (bytes[start + 1] | 0x20) == UInt8(ascii: "o")
            && (bytes[start + 2] | 0x20) == UInt8(ascii: "s") && (bytes[start + 3] | 0x20) == UInt8(ascii: "t")
    }

    /// `Example.COM.:8080` → `example.com`; `[2001:db8::1]:80` → `[2001:db8::1]`.
    private static func normalizeHost(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(HTTPRequestHeadError) -> String {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, bytes[lower] == UInt8(ascii: " ") || bytes[lower] == UInt8(ascii: "\t") { lower += 1 }
        while upper > lower, bytes[upper - 1] == UInt8(ascii: " ") || bytes[upper - 1] == UInt8(ascii: "\t") { upper -= 1 }
        var end = upper
        if lower < upper, bytes[lower] == UInt8(ascii: "[") {
            guard let close = bytes[lower..<upper].firstIndex(of: UInt8(ascii: "]")) else { throw .badHost }
            let port = bytes[(close + 1)..<upper]
            guard port.isEmpty || (port.first == UInt8(ascii: ":") && port.dropFirst().allSatisfy(isDigit)) else { throw .badHost }
            end = close + 1
        } else if let colon = bytes[lower..<upper].lastIndex(of: UInt8(ascii: ":")) {
            guard bytes[(colon + 1)..<upper].allSatisfy(isDigit) else { throw .badHost }
            end = colon
        }
        if end > lower, bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
        guard end > lower, end - lower <= 255 else { throw .badHost }
        var previous: UInt8 = UInt8(ascii: ".")
        var host = [UInt8]()
        host.reserveCapacity(end - lower)
        for byte in bytes[lower..<end] {
            // No empty label: "a..b", ".a" and "a.." (after the one trailing dot) name nothing.
            if byte == UInt8(ascii: "."), previous == UInt8(ascii: ".") { throw .badHost }
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): host.append(byte | 0x20)
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: ":"):
                host.append(byte)
            default: throw .badHost
            }
            previous = byte
        }
        if previous == UInt8(ascii: ".") { throw .badHost }
        return String(decoding: host, as: UTF8.self)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
