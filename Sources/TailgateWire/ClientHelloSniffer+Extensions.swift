extension ClientHelloSniffer {
    /// The longest DNS host name, without the trailing dot (RFC 1035 §2.3.4).
    static let maximumHostNameLength = 253

    /// Parses the `server_name` extension data that ends at handshake position `end` (RFC 6066 §3):
    ///
    ///     struct {
    ///         NameType name_type;
    ///         select (name_type) { case host_name: HostName; } name;
    ///     } ServerName;
    ///     enum { host_name(0), (255) } NameType;
    ///     opaque HostName<1..2^16-1>;
    ///     struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
    ///
    /// Like OpenSSL, it accepts exactly one `host_name` entry: another name type cannot be
    /// skipped (its length is not encoded), and RFC 6066 allows one name per type.
    ///
    /// - Returns: the normalized host name, or nil while bytes are missing.
    static func parseServerName(reader: inout HandshakeReader, end: Int) throws(ClientHelloError) -> String? {
        guard end - reader.position >= 2 else {
            throw .malformed
        }
        guard let listLength = try reader.readLength(byteCount: 2) else {
            return nil
        }
        guard listLength == end - reader.position, listLength >= 3 else {
            throw .malformed
        }
        guard let nameType = try reader.readByte() else {
            return nil
        }
        guard nameType == 0 else {
            throw .malformed
        }
        guard let nameLength = try reader.readLength(byteCount: 2) else {
            return nil
        }
        // The name must fill the list exactly; one trailing dot is tolerated and removed.
        guard nameLength == end - reader.position, nameLength >= 1, nameLength <= Self.maximumHostNameLength + 1 else {
            throw .malformed
        }
        var name: [UInt8] = []
        name.reserveCapacity(nameLength)
        guard try reader.readBytes(nameLength, appendingTo: &name) else {
            return nil
        }
        return try Self.normalizedHostName(&name)
    }

    /// Checks that `name` is a DNS host name and returns it lowercased, without a trailing dot.
    ///
    /// Labels are 1 to 63 letters, digits, hyphens or underscores (which real names carry,
    /// though not host names in the strict sense); the name is at most 253 bytes.
    static func normalizedHostName(_ name: inout [UInt8]) throws(ClientHelloError) -> String {
        if name.last == UInt8(ascii: ".") {
            name.removeLast()
        }
        guard !name.isEmpty, name.count <= Self.maximumHostNameLength else {
            throw .malformed
        }
        var labelLength = 0
        for index in name.indices {
            let byte = name[index]
            switch byte {
            case UInt8(ascii: "."):
                guard labelLength > 0 else {
                    throw .malformed
                }
                labelLength = 0
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                name[index] = byte + (UInt8(ascii: "a") - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"):
                break
            default:
                throw .malformed
            }
            labelLength += 1
            guard labelLength <= 63 else {
                throw .malformed
            }
        }
        guard labelLength > 0 else {
            throw .malformed
        }
        return String(decoding: name, as: UTF8.self)
    }

    /// Parses the `application_layer_protocol_negotiation` extension data that ends at
    /// handshake position `end` (RFC 7301 §3.1):
    ///
    ///     opaque ProtocolName<1..2^8-1>;
    ///     struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
    ///
    /// - Returns: the protocol names in the client's order, or nil while bytes are missing.
    static func parseALPN(reader: inout HandshakeReader, end: Int) throws(ClientHelloError) -> [String]? {
        guard end - reader.position >= 2 else {
            throw .malformed
        }
        guard let listLength = try reader.readLength(byteCount: 2) else {
            return nil
        }
        guard listLength == end - reader.position, listLength >= 2 else {
            throw .malformed
        }
        var protocols: [String] = []
        var name: [UInt8] = []
        while reader.position < end {
            guard let nameLength = try reader.readLength(byteCount: 1) else {
                return nil
            }
            guard nameLength >= 1, nameLength <= end - reader.position else {
                throw .malformed
            }
            name.removeAll(keepingCapacity: true)
            guard try reader.readBytes(nameLength, appendingTo: &name) else {
                return nil
            }
            protocols.append(String(decoding: name, as: UTF8.self))
        }
        return protocols
    }
}
