/// Why a byte stream is not a usable TLS ClientHello.
///
/// The `rawValue` is a short snake_case reason for logs and metric labels.
public enum ClientHelloError: String, Error, Sendable, CaseIterable {
    /// The first record is not a TLS handshake record: its content type is not 22, or its
    /// version is not `0x03 0x0X` (an SSLv2-style hello, HTTP, or anything else).
    case notTLS = "not_tls"

    /// A record announces a fragment longer than 2^14 bytes, the limit for plaintext
    /// records (RFC 8446 §5.1).
    case recordTooLarge = "record_too_large"

    /// The first handshake message is not a ClientHello.
    case notClientHello = "not_client_hello"

    /// The records holding the ClientHello would exceed the sniffer's `maxBytes`.
    case tooLarge = "too_large"

    /// A record other than a handshake record arrived before the ClientHello was complete
    /// (RFC 8446 §5.1 forbids interleaving).
    case unexpectedRecord = "unexpected_record"

    /// A length or structure is inconsistent, a server name has characters a DNS host
    /// name cannot have, an ALPN protocol name is empty, a record is empty, and so on.
    case malformed = "malformed"
}
