import NIOCore

/// A PROXY protocol header, version 1 (text) or 2 (binary), as decoded by ``ProxyHeaderDecoder``
/// or to be written by ``ProxyHeaderEncoder``.
///
/// See haproxy's `doc/proxy-protocol.txt` (2020/03/05).
public struct ProxyHeader: Sendable, Equatable {
    /// The version of the PROXY protocol.
    public enum Version: Sendable, Equatable {
        /// The human-readable line, `PROXY TCP4 …\r\n`.
        case v1
        /// The binary header starting with the 12-byte signature.
        case v2
    }

    /// What the sender says about the connection.
    public enum Command: Sendable, Equatable {
        /// The sender made the connection on its own (a health check): use the real endpoints.
        case local
        /// The sender relays a connection; the header carries its original endpoints if known.
        case proxy
    }

    /// The transport protocol of the relayed connection.
    public enum TransportProtocol: Sendable, Equatable {
        /// `SOCK_STREAM`: TCP, or a UNIX stream socket.
        case stream
        /// `SOCK_DGRAM`: UDP, or a UNIX datagram socket.
        case datagram
        /// Unknown or not said: v2 `UNSPEC`, v1 `UNKNOWN`.
        case unspecified
    }

    /// A type-length-value vector of a v2 header (section 2.2 of the specification).
    public struct TLV: Sendable, Equatable {
        /// `PP2_TYPE_ALPN`: the ALPN protocol in use.
        public static let alpnType: UInt8 = 0x01
        /// `PP2_TYPE_AUTHORITY`: the host name the client asked for, such as its TLS SNI, in UTF-8.
        public static let authorityType: UInt8 = 0x02
        /// `PP2_TYPE_CRC32C`: the CRC32c checksum of the whole header.
        public static let crc32cType: UInt8 = 0x03
        /// `PP2_TYPE_NOOP`: padding, to be ignored.
        public static let noopType: UInt8 = 0x04

        /// The type of the vector.
        public var type: UInt8
        /// The value, without the type and length bytes.
        public var value: ByteBuffer

        /// Creates a vector.
        public init(type: UInt8, value: ByteBuffer) {
            self.type = type
            self.value = value
        }
    }

    /// The version the header was or is to be written in.
    public var version: Version
    /// LOCAL or PROXY; a v1 header is always `.proxy`, also for `UNKNOWN`.
    public var command: Command
    /// The transport protocol; `.unspecified` for v1 `UNKNOWN` and v2 `UNSPEC`.
    public var transport: TransportProtocol
    /// The original source (client) address; nil for LOCAL, `UNSPEC`, `UNKNOWN` and `AF_UNIX`.
    public var source: SocketAddress?
    /// The original destination (proxy) address; nil when `source` is.
    public var destination: SocketAddress?
    /// The TLVs of a v2 header in the order received, `PP2_TYPE_NOOP` included; empty for v1.
    public var tlvs: [TLV]

    /// Creates a header.
    public init(
        version: Version,
        command: Command,
        transport: TransportProtocol,
        source: SocketAddress?,
        destination: SocketAddress?,
        tlvs: [TLV] = []
    ) {
        self.version = version
        self.command = command
        self.transport = transport
        self.source = source
        self.destination = destination
        self.tlvs = tlvs
    }

    /// The value of the first `PP2_TYPE_AUTHORITY` TLV, if any.
    ///
    /// ``ProxyHeaderDecoder`` rejects an authority that is not valid UTF-8.
    public var authority: String? {
        guard let tlv = self.tlvs.first(where: { $0.type == TLV.authorityType }) else {
            return nil
        }
        return String(decoding: tlv.value.readableBytesView, as: UTF8.self)
    }
}
