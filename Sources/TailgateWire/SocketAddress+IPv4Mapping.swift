import NIOCore

extension SocketAddress {
    /// The IPv4 address that an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2)
    /// stands for, with the same port; any other address unchanged.
    ///
    /// A dual-stack IPv6 socket reports IPv4 peers as mapped addresses; users expect to see
    /// them as IPv4, for example in a PROXY header's `TCP4` line or nginx's `$proxy_protocol_addr`.
    public func unmappingIPv4() -> SocketAddress {
        guard case .v6(let address) = self else {
            return self
        }
        let mapped: ByteBuffer? = withUnsafeBytes(of: address.address.sin6_addr) { bytes in
            guard bytes.prefix(10).allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else {
                return nil
            }
            return ByteBuffer(bytes: bytes[12..<16])
        }
        guard let mapped, let port = self.port else {
            return self
        }
        do {
            return try SocketAddress(packedIPAddress: mapped, port: port)
        } catch {
            preconditionFailure("4 bytes always make an IPv4 address: \(error)")
        }
    }

    /// Calls `body` with the 4 (IPv4) or 16 (IPv6) bytes of the address in network order;
    /// returns nil for a UNIX domain socket.
    func withPackedIPAddress<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result? {
        switch self {
        case .v4(let address):
            return withUnsafeBytes(of: address.address.sin_addr, body)
        case .v6(let address):
            return withUnsafeBytes(of: address.address.sin6_addr, body)
        case .unixDomainSocket:
            return nil
        }
    }
}
