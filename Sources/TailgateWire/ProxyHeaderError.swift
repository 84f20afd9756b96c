/// Why bytes are not a valid PROXY protocol header.
///
/// The `rawValue` is a short snake_case reason for logs and metric labels.
public enum ProxyHeaderError: String, Error, Sendable, CaseIterable {
    /// The first bytes match neither `PROXY ` (v1) nor the 12-byte v2 signature.
    case notProxyProtocol = "not_proxy_protocol"
    /// A v1 line does not follow the grammar exactly: protocol, address syntax for the
    /// family, ports 0 to 65535 without leading zeros or sign, single spaces, CRLF.
    case malformedV1 = "malformed_v1"
    /// A v1 line has no CRLF within its first 107 bytes.
    case v1TooLong = "v1_too_long"
    /// The v2 version nibble is not 2.
    case unsupportedVersion = "unsupported_version"
    /// The v2 command nibble is neither LOCAL (0) nor PROXY (1).
    case unsupportedCommand = "unsupported_command"
    /// The v2 family and protocol byte is not one the specification defines, or the length is
    /// shorter than the address block of the family.
    case malformedV2 = "malformed_v2"
    /// The v2 length exceeds the decoder's `maxV2Length`.
    case v2TooLong = "v2_too_long"
    /// The v2 TLVs do not exactly fill the header, the authority is not UTF-8, or a CRC32c
    /// TLV is not 4 bytes or does not match the header.
    case malformedTLV = "malformed_tlv"
}
