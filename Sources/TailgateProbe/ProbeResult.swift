/// The outcome of one health check.
public struct ProbeResult: Sendable, Equatable {
    /// Why a check failed.
    public enum Failure: Sendable, Equatable {
        /// The server refused the connection (`ECONNREFUSED`): nothing listens there.
        case refused
        /// The check did not finish within its timeout (connect, preamble or handshake).
        case timeout
        /// Another socket error, as `strerror` words it (such as "Connection reset by peer").
        case network(String)
        /// The TLS handshake failed: an alert from the server, a protocol error, or the server
        /// closing the connection; OpenSSL's reason (such as "tlsv1 alert internal error").
        case handshake(String)
        /// A certificate in the chain has expired (`X509_V_ERR_CERT_HAS_EXPIRED`).
        case certificateExpired
        /// A certificate in the chain is not valid yet (`X509_V_ERR_CERT_NOT_YET_VALID`).
        case certificateNotYetValid
        /// The chain does not lead to a trusted authority, or is otherwise broken; OpenSSL's
        /// verify error (such as "self-signed certificate"). Also used when the `caFile`
        /// cannot be loaded.
        case certificateUntrusted(String)
        /// The certificate is not for the requested server name (`X509_V_ERR_HOSTNAME_MISMATCH`,
        /// or `X509_V_ERR_IP_ADDRESS_MISMATCH` for an IP address).
        case hostnameMismatch
        /// An `https` check was answered with this status (not 2xx or 3xx).
        case httpStatus(Int)
        /// An `https` check got no HTTP answer it could read; why.
        case httpResponse(String)
    }

    /// Why the check failed; nil when the upstream is healthy.
    public var failure: Failure?
    /// How long the check took.
    public var duration: Duration
    /// The leaf certificate's notAfter as seconds since the epoch (tls only), recorded even when
    /// verification fails.
    public var certificateNotAfter: Int64?

    /// A result; see the properties.
    public init(failure: Failure?, duration: Duration, certificateNotAfter: Int64? = nil) {
        self.failure = failure
        self.duration = duration
        self.certificateNotAfter = certificateNotAfter
    }

    /// Whether the upstream passed the check.
    public var isHealthy: Bool { failure == nil }

    /// One short human phrase, e.g. "ok", "connection refused", "certificate expired",
    /// "certificate not trusted: self-signed certificate", "certificate is for another name".
    public var summary: String {
        guard let failure else { return "ok" }
        switch failure {
        case .refused: return "connection refused"
        case .timeout: return "timed out"
        case .network(let reason): return "network error: \(reason)"
        case .handshake(let reason): return "TLS handshake failed: \(reason)"
        case .certificateExpired: return "certificate expired"
        case .certificateNotYetValid: return "certificate not yet valid"
        case .certificateUntrusted(let reason): return "certificate not trusted: \(reason)"
        case .hostnameMismatch: return "certificate is for another name"
        case .httpStatus(let status): return "HTTP status \(status)"
        case .httpResponse(let reason): return "no HTTP answer: \(reason)"
        }
    }
}
