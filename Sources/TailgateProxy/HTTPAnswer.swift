/// The responses an http listener writes itself, always with `Connection: close`: redirects to https and
/// the refusals (400, 403, 404, 408, 429, 431). Small enough for one write into an empty socket buffer.
enum HTTPAnswer {
    static func reason(_ status: Int) -> String {
        switch status {
        case 301: return "Moved Permanently"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 408: return "Request Timeout"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        default: return "Error"
        }
    }

    /// A status with a one-line text body.
    static func status(_ status: Int) -> [UInt8] {
        let body = "\(status) \(reason(status))\n"
        return Array((
            "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body
        ).utf8)
    }

    /// A redirect to `location`: 301 for GET and HEAD, 308 otherwise (so a POST stays a POST).
    static func redirect(to location: String, method: String) -> (status: Int, bytes: [UInt8]) {
        let status = method == "GET" || method == "HEAD" ? 301 : 308
        let head = "HTTP/1.1 \(status) \(reason(status))\r\nLocation: \(location)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        return (status, Array(head.utf8))
    }
}
