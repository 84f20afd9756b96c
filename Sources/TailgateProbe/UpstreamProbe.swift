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
            let failure = connection.verificationFailure
            let notAfter = connection.certificateNotAfter
            connection.close()
            return ProbeResult(failure: failure, duration: deadline.elapsed, certificateNotAfter: notAfter)
        } catch {
            return ProbeResult(failure: error.failure, duration: deadline.elapsed, certificateNotAfter: error.certificateNotAfter)
        }
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
