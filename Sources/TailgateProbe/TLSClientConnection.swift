import COpenSSL
import Glibc

/// The client side of one TLS handshake over a probe socket.
///
/// OpenSSL reads from and writes to memory BIOs, and this type carries the bytes between them
/// and the socket. So every wait is the socket's deadline-bounded `poll`, and every send goes
/// through `MSG_NOSIGNAL` (OpenSSL's socket BIO writes with `write`, which raises SIGPIPE).
final class TLSClientConnection {
    let ssl: OpaquePointer
    /// What the server sent, for OpenSSL to read; owned by `ssl`.
    private let incoming: OpaquePointer
    /// What OpenSSL wrote, for the socket to send; owned by `ssl`.
    private let outgoing: OpaquePointer
    private let socket: ProbeSocket

    private init(ssl: OpaquePointer, incoming: OpaquePointer, outgoing: OpaquePointer, socket: ProbeSocket) {
        self.ssl = ssl
        self.incoming = incoming
        self.outgoing = outgoing
        self.socket = socket
    }

    deinit {
        SSL_free(ssl)
    }

    /// A connection in client mode over `socket`, sending `serverName` as SNI and checking the
    /// certificate against it (see `ProbeRequest.serverName`).
    static func make(context: TLSClientContext, socket: ProbeSocket, serverName: String?) throws(ProbeError) -> TLSClientConnection {
        ERR_clear_error()
        let creationFailure = { ProbeError(.handshake("cannot create a TLS connection: \(OpenSSLErrorQueue.takeReason())")) }
        guard let ssl = SSL_new(context.pointer) else { throw creationFailure() }
        guard let incoming = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw creationFailure()
        }
        guard let outgoing = BIO_new(BIO_s_mem()) else {
            BIO_free(incoming)
            SSL_free(ssl)
            throw creationFailure()
        }
        SSL_set_bio(ssl, incoming, outgoing)
        let connection = TLSClientConnection(ssl: ssl, incoming: incoming, outgoing: outgoing, socket: socket)
        SSL_set_connect_state(ssl)
        if let serverName {
            try connection.expect(serverName: serverName)
        }
        return connection
    }

    /// Runs the handshake until it completes, fails, or `deadline` passes. A completed
    /// handshake says nothing about the certificate yet: see `verificationFailure`.
    func handshake(deadline: ProbeDeadline) throws(ProbeError) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        do throws(ProbeError) {
            while true {
                ERR_clear_error()
                let result = SSL_connect(ssl)
                let status = result == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, result)
                switch status {
                case SSL_ERROR_NONE:
                    try flush(deadline: deadline)
                    return
                case SSL_ERROR_WANT_READ:
                    guard try receive(into: &buffer, deadline: deadline, failure: ProbeResult.Failure.handshake) else {
                        throw ProbeError(.handshake("connection closed by the server"))
                    }
                case SSL_ERROR_SSL:
                    let reason = OpenSSLErrorQueue.takeReason()
                    // Sends the alert OpenSSL may have queued; the server may be gone already.
                    flushWithoutWaiting()
                    throw ProbeError(.handshake(reason))
                case SSL_ERROR_ZERO_RETURN:
                    throw ProbeError(.handshake("connection closed by the server"))
                default:
                    throw ProbeError(.handshake("unexpected OpenSSL state \(status): \(OpenSSLErrorQueue.takeReason())"))
                }
            }
        } catch {
            ERR_clear_error()
            throw ProbeError(error.failure, certificateNotAfter: certificateNotAfter)
        }
    }

    /// Encrypts and sends `bytes` on a connection whose handshake completed, by `deadline`.
    func write(_ bytes: [UInt8], deadline: ProbeDeadline) throws(ProbeError) {
        ERR_clear_error()
        let written = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32(clamping: $0.count)) }
        // Memory BIOs take everything at once: a short or failed write is an error, not a wait.
        guard written == Int32(bytes.count) else {
            throw ProbeError(.httpResponse("cannot send the request: \(OpenSSLErrorQueue.takeReason())"))
        }
        try flush(deadline: deadline)
    }

    /// Some decrypted bytes from the server, waiting for them at most until `deadline`; empty once the
    /// server has closed (with a close_notify or without).
    func read(deadline: ProbeDeadline) throws(ProbeError) -> [UInt8] {
        var plain = [UInt8](repeating: 0, count: 4096)
        var wire = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            ERR_clear_error()
            let count = plain.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32(clamping: $0.count)) }
            if count > 0 { return Array(plain.prefix(Int(count))) }
            switch SSL_get_error(ssl, count) {
            case SSL_ERROR_WANT_READ:
                guard try receive(into: &wire, deadline: deadline, failure: ProbeResult.Failure.httpResponse) else { return [] }
            case SSL_ERROR_ZERO_RETURN:
                return []
            default:
                throw ProbeError(.httpResponse(OpenSSLErrorQueue.takeReason()))
            }
        }
    }

    /// What OpenSSL waits for: sends what it wrote, then moves the server's next bytes into it. False
    /// when the server has closed; `failure` words an error of OpenSSL's buffering.
    private func receive(
        into buffer: inout [UInt8], deadline: ProbeDeadline, failure: (String) -> ProbeResult.Failure
    ) throws(ProbeError) -> Bool {
        try flush(deadline: deadline)
        let count = try socket.receive(into: &buffer, deadline: deadline)
        guard count > 0 else { return false }
        let written = buffer.withUnsafeBytes { BIO_write(incoming, $0.baseAddress, Int32(count)) }
        guard written == Int32(count) else {
            throw ProbeError(failure("cannot buffer the server's bytes: \(OpenSSLErrorQueue.takeReason())"))
        }
        return true
    }

    /// Sends a close_notify if it fits in the socket's buffer and closes without waiting for
    /// the server's; for a connection whose handshake completed.
    func close() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
        flushWithoutWaiting()
        socket.discardReceived()
    }

    /// Sends everything OpenSSL has written, waiting for room at most until `deadline`.
    private func flush(deadline: ProbeDeadline) throws(ProbeError) {
        let bytes = takeOutgoing()
        if !bytes.isEmpty {
            try socket.send(bytes[...], deadline: deadline)
        }
    }

    /// Sends what OpenSSL has written as far as the socket takes it now, dropping the rest.
    private func flushWithoutWaiting() {
        let bytes = takeOutgoing()
        if !bytes.isEmpty {
            socket.sendWithoutWaiting(bytes[...])
        }
    }

    /// Everything OpenSSL has written so far, taken out of the outgoing BIO.
    private func takeOutgoing() -> [UInt8] {
        let pending = Int(BIO_ctrl_pending(outgoing))
        guard pending > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: pending)
        let count = bytes.withUnsafeMutableBytes { BIO_read(outgoing, $0.baseAddress, Int32(clamping: $0.count)) }
        return Array(bytes.prefix(max(Int(count), 0)))
    }
}
