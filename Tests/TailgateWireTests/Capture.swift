import Foundation
import NIOCore
import TailgateWire
import Testing

/// A ClientHello captured from a real client by `Captures/capture.sh`.
struct Capture: Sendable, CustomTestStringConvertible {
    var file: String
    var expected: ClientHelloInfoExpectation

    var testDescription: String { self.file }

    /// The captured bytes.
    func bytes() throws -> [UInt8] {
        try Self.bytes(named: self.file)
    }

    /// The bytes of the file `name` in `Captures`.
    static func bytes(named name: String) throws -> [UInt8] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Captures")
        return try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static let all: [Capture] = [
        Capture(
            file: "openssl-sni-alpn.bin",
            expected: .init(serverName: "tailgate.example.test", alpn: ["h2", "http/1.1"], byteCount: 345)
        ),
        Capture(file: "openssl-no-sni.bin", expected: .init(serverName: nil, alpn: [], byteCount: 297)),
        Capture(
            file: "curl.bin",
            expected: .init(serverName: "www.example.test", alpn: ["h2", "http/1.1"], byteCount: 517)
        ),
        Capture(
            file: "chromium-mlkem.bin",
            expected: .init(serverName: "pq.example.test", alpn: ["h2", "http/1.1"], byteCount: 2019)
        ),
        Capture(
            file: "chromium-mlkem-fragmented.bin",
            expected: .init(serverName: "pq.example.test", alpn: ["h2", "http/1.1"], byteCount: 2119)
        ),
    ]
}

/// What the sniffer must find in a capture.
struct ClientHelloInfoExpectation: Sendable {
    var serverName: String?
    var alpn: [String]
    var byteCount: Int

    var info: ClientHelloInfo {
        ClientHelloInfo(serverName: self.serverName, alpn: self.alpn, legacyVersion: 0x0303, byteCount: self.byteCount)
    }
}
