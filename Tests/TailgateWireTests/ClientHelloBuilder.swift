/// Builds ClientHellos byte by byte, well-formed by default, for tests to break on purpose.
struct ClientHelloBuilder {
    var legacyVersion: UInt16 = 0x0303
    var random: [UInt8] = Array(repeating: 0x5A, count: 32)
    var sessionID: [UInt8] = Array(repeating: 0xAB, count: 32)
    var cipherSuites: [UInt8] = [0x13, 0x01, 0x13, 0x02, 0x13, 0x03]
    var compressionMethods: [UInt8] = [0x00]
    /// The extensions; nil leaves out the extensions block (allowed before TLS 1.3).
    var extensions: [Extension]? = [.serverName("example.com"), .alpn(["h2", "http/1.1"])]
    var recordVersion: UInt16 = 0x0301
    var fragmentLength = 1 << 14

    struct Extension {
        var type: UInt16
        var data: [UInt8]

        static func serverName(_ name: String) -> Extension {
            Self.serverName(bytes: Array(name.utf8))
        }

        static func serverName(bytes name: [UInt8]) -> Extension {
            let entry = [0x00] + u16(name.count) + name
            return Extension(type: 0, data: u16(entry.count) + entry)
        }

        static func alpn(_ names: [String]) -> Extension {
            let list = names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            return Extension(type: 16, data: u16(list.count) + list)
        }

        /// An extension the sniffer skips, such as a big key share.
        static func opaque(type: UInt16 = 51, count: Int) -> Extension {
            Extension(type: type, data: Array(repeating: 0x42, count: count))
        }
    }

    /// The ClientHello body, without the handshake header.
    var body: [UInt8] {
        var body = u16(Int(self.legacyVersion)) + self.random
        body += [UInt8(self.sessionID.count)] + self.sessionID
        body += u16(self.cipherSuites.count) + self.cipherSuites
        body += [UInt8(self.compressionMethods.count)] + self.compressionMethods
        if let extensions = self.extensions {
            let block = extensions.flatMap { u16(Int($0.type)) + u16($0.data.count) + $0.data }
            body += u16(block.count) + block
        }
        return body
    }

    /// The handshake message: type 1, 24-bit length, body.
    var handshake: [UInt8] {
        let body = self.body
        return [0x01] + u24(body.count) + body
    }

    /// The handshake message framed in handshake records of at most `fragmentLength` bytes.
    var bytes: [UInt8] {
        Self.frame(self.handshake, fragmentLength: self.fragmentLength, version: self.recordVersion)
    }

    /// Frames `handshake` into handshake records of at most `fragmentLength` bytes.
    static func frame(_ handshake: [UInt8], fragmentLength: Int, version: UInt16 = 0x0301) -> [UInt8] {
        stride(from: 0, to: handshake.count, by: fragmentLength).flatMap { start in
            record(Array(handshake[start..<min(start + fragmentLength, handshake.count)]), version: version)
        }
    }

    /// One record of content type `type` (22: handshake).
    static func record(_ fragment: [UInt8], type: UInt8 = 22, version: UInt16 = 0x0301) -> [UInt8] {
        [type] + u16(Int(version)) + u16(fragment.count) + fragment
    }
}

func u16(_ value: Int) -> [UInt8] {
    [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
}

func u24(_ value: Int) -> [UInt8] {
    [UInt8(truncatingIfNeeded: value >> 16)] + u16(value)
}
