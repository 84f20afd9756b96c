import COpenSSL

/// An OpenSSL client context for probes: TLS 1.2 or later, trusting either a PEM bundle or the
/// system store. Freed when the object goes away.
///
/// The context does not abort handshakes over the certificate (`SSL_VERIFY_NONE`): OpenSSL still
/// verifies the chain, dates and name, and keeps the first error, which the connection reads
/// once the handshake is done. So an untrusted, expired or misnamed certificate is reported as
/// such, with its notAfter, instead of as a bare handshake failure.
///
/// Sendable because the context is not changed after `make`, and OpenSSL allows connections to
/// be made from one context on several threads at once.
final class TLSClientContext: @unchecked Sendable {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// A context trusting the authorities in `caFile`, or the system store when nil.
    static func make(caFile: String?) throws(ProbeError) -> TLSClientContext {
        ERR_clear_error()
        guard let pointer = SSL_CTX_new(TLS_client_method()) else {
            throw ProbeError(.handshake("cannot create a TLS context: \(OpenSSLErrorQueue.takeReason())"))
        }
        let context = TLSClientContext(pointer: pointer)
        guard tailgate_SSL_CTX_set_min_proto_version(pointer, TLS1_2_VERSION) == 1 else {
            throw ProbeError(.handshake("cannot set TLS 1.2 as the minimum: \(OpenSSLErrorQueue.takeReason())"))
        }
        SSL_CTX_set_verify(pointer, SSL_VERIFY_NONE, nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(pointer, caFile, nil) == 1 else {
                let reason = OpenSSLErrorQueue.takeReason()
                throw ProbeError(.certificateUntrusted("cannot load CA file \(caFile): \(reason)"))
            }
        } else {
            guard SSL_CTX_set_default_verify_paths(pointer) == 1 else {
                let reason = OpenSSLErrorQueue.takeReason()
                throw ProbeError(.certificateUntrusted("cannot load the system's certificate authorities: \(reason)"))
            }
        }
        return context
    }
}

/// Whether TLS checks can use a CA file, asked when a configuration is loaded.
public enum TrustFile {
    /// Why `path` cannot serve as a PEM bundle of certificate authorities, or nil when it can.
    public static func problem(_ path: String) -> String? {
        do {
            _ = try TLSClientContext.make(caFile: path)
            return nil
        } catch {
            if case .certificateUntrusted(let reason) = error.failure { return reason }
            return "\(error)"
        }
    }
}
