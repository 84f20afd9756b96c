import COpenSSL
import Glibc

extension TLSClientConnection {
    /// Sets the name the certificate must be for and, for a DNS name, the SNI. An IP address
    /// (which RFC 6066 keeps out of SNI) is checked against the certificate's IP addresses.
    func expect(serverName: String) throws(ProbeError) {
        let parameters = SSL_get0_param(ssl)
        if Self.isIPAddress(serverName) {
            guard X509_VERIFY_PARAM_set1_ip_asc(parameters, serverName) == 1 else {
                throw ProbeError(.handshake("cannot check for IP address \(serverName): \(OpenSSLErrorQueue.takeReason())"))
            }
            return
        }
        guard tailgate_SSL_set_tlsext_host_name(ssl, serverName) == 1, SSL_set1_host(ssl, serverName) == 1 else {
            throw ProbeError(.handshake("cannot use server name \(serverName): \(OpenSSLErrorQueue.takeReason())"))
        }
        // "*" matches a whole label only, as browsers do: no "w*.example.com".
        X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
    }

    /// The leaf certificate's notAfter in seconds since the epoch, once the server has sent it.
    var certificateNotAfter: Int64? {
        guard let certificate = SSL_get0_peer_certificate(ssl), let notAfter = X509_get0_notAfter(certificate) else {
            return nil
        }
        var fields = tm()
        guard ASN1_TIME_to_tm(notAfter, &fields) == 1 else { return nil }
        return Int64(timegm(&fields))
    }

    /// What is wrong with the server's certificate after a completed handshake, or nil when it
    /// is trusted, current, and for the expected name. OpenSSL stops at the first problem: the
    /// chain, then the name, then the dates.
    var verificationFailure: ProbeResult.Failure? {
        guard SSL_get0_peer_certificate(ssl) != nil else { return .handshake("the server sent no certificate") }
        let code = Int32(truncatingIfNeeded: SSL_get_verify_result(ssl))
        switch code {
        case X509_V_OK:
            return nil
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return .certificateExpired
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return .certificateNotYetValid
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            return .hostnameMismatch
        default:
            return .certificateUntrusted(String(cString: X509_verify_cert_error_string(Int(code))))
        }
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
