import NIOCore
import TailgateWire

/// Active health checks of upstream servers.
public enum UpstreamProbe {
    /// Runs one check synchronously (blocking the calling thread for at most about `request.timeout`).
    ///
    /// Connects without blocking and waits with `poll` until the deadline, sends the PROXY
    /// preamble when asked, and for `.tls` runs a full handshake through the system OpenSSL,
    /// then closes with a close_notify without waiting for the server's. Safe to call from
    /// several threads at once; run it off any event loop.
    public static func run(_ request: ProbeRequest) -> ProbeResult {
        let deadline = ProbeDeadline(timeout: request.timeout)
        do throws(ProbeError) {
            // The context first: an unreadable CA file fails the check without touching the upstream.
            let context = request.kind == .tls ? try TLSClientContextCache.shared.context(caFile: request.caFile) : nil
            let socket = try ProbeSocket.connect(to: request.server, deadline: deadline)
            if let preamble = Self.preambleBytes(request.preamble) {
                try socket.send(preamble[...], deadline: deadline)
            }
            guard let context else {
                return ProbeResult(failure: nil, duration: deadline.elapsed)
            }
            let connection = try TLSClientConnection.make(context: context, socket: socket, serverName: request.serverName)
            try connection.handshake(deadline: deadline)
            var failure = connection.verificationFailure
            let notAfter = connection.certificateNotAfter
            // The request only to a server whose certificate passed: an answer from another does not count.
            if failure == nil, let path = request.httpPath {
                failure = Self.exchange(path: path, host: request.serverName ?? request.server.ipAddress ?? "localhost", over: connection, deadline: deadline)
            }
            connection.close()
            return ProbeResult(failure: failure, duration: deadline.elapsed, certificateNotAfter: notAfter)
        } catch {
            return ProbeResult(failure: error.failure, duration: deadline.elapsed, certificateNotAfter: error.certificateNotAfter)
        }
    }

    /// Sends `GET path` and reads the status line: nil for 2xx and 3xx, else why not (a timeout or a
    /// network error included).
    static func exchange(path: String, host: String, over connection: TLSClientConnection, deadline: ProbeDeadline) -> ProbeResult.Failure? {
        let authority = host.contains(":") ? "[\(host)]" : host
        do throws(ProbeError) {
            try connection.write(Array("GET \(path) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: tailgate-check\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8), deadline: deadline)
            var head: [UInt8] = []
            while !head.contains(0x0A) {
                let bytes = try connection.read(deadline: deadline)
                guard !bytes.isEmpty else { return .httpResponse(head.isEmpty ? "the server closed without answering" : "the answer ended in its status line") }
                head += bytes
                guard head.count <= 8192 else { return .httpResponse("no status line in the first 8 KiB") }
            }
            return statusFailure(head)
        } catch {
            return error.failure
        }
    }

    /// nil when `head` starts with an HTTP/1.x status line of 2xx or 3xx; else why not.
    static func statusFailure(_ head: [UInt8]) -> ProbeResult.Failure? {
        let line = head.prefix { $0 != 0x0D && $0 != 0x0A }
        let words = line.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
        guard words.count >= 2, words[0].starts(with: Array("HTTP/1.".utf8)), words[1].count == 3,
              let status = Int(String(decoding: words[1], as: UTF8.self)) else {
            let shown = String(decoding: line.prefix(40), as: UTF8.self).unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7F ? String($0) : "?" }.joined()
            return .httpResponse("not an HTTP/1.x status line: \"\(shown)\"")
        }
        return (200...399).contains(status) ? nil : .httpStatus(status)
    }

    /// The PROXY protocol header for `preamble`, without addresses: the check is the proxy's own.
    static func preambleBytes(_ preamble: ProbeRequest.ProxyPreamble) -> [UInt8]? {
        var buffer = ByteBuffer()
        switch preamble {
        case .none:
            return nil
        case .v1:
            ProxyHeaderEncoder.writeV1(source: nil, destination: nil, into: &buffer)
        case .v2:
            ProxyHeaderEncoder.writeV2(command: .local, source: nil, destination: nil, authority: nil, into: &buffer)
        }
        return Array(buffer.readableBytesView)
    }
}
