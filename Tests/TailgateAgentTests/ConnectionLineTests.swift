import Glibc
import Logging
import NIOCore
@testable import TailgateProxy
import TailgateSystem
import Testing

@testable import TailgateAgent

/// The connection line has two writers: straight from its fields (the hot path) and through swift-log
/// metadata (any other handler, JSON). The text they make must be the same, byte for byte.
@Suite struct ConnectionLineTests {
    static let lines: [ConnectionLogLine] = [
        ConnectionLogLine(
            listener: "public", client: try? SocketAddress(ipAddress: "100.64.10.7", port: 51_234), peer: nil,
            serverName: "grafana.example.com", alpn: ["h2", "http/1.1"], upstream: "ops",
            server: try? SocketAddress(ipAddress: "192.168.1.20", port: 443), bytesIn: 602, bytesOut: 1_214,
            durationMilliseconds: 42, outcome: .closed, reason: nil
        ),
        ConnectionLogLine(
            listener: "admin", client: try? SocketAddress(ipAddress: "203.0.113.9", port: 40_000),
            peer: try? SocketAddress(ipAddress: "fd7a:115c:a1e0::5", port: 61_000), serverName: nil, alpn: [],
            upstream: nil, server: nil, bytesIn: 0, bytesOut: 0, durationMilliseconds: 0, outcome: .reset,
            reason: "client: recv: Connection reset by peer (errno 104)"
        ),
        ConnectionLogLine(
            listener: "x", client: nil, peer: nil, serverName: "we\"ird =name", alpn: ["a b"], upstream: "",
            server: nil, bytesIn: 7, bytesOut: 1_000_000_000, durationMilliseconds: 123_456, outcome: .badClientHello,
            reason: "tab\there"
        ),
    ]

    @Test(arguments: 0..<lines.count)
    func theDirectLineIsTheMetadataLine(index: Int) {
        let fields = Self.lines[index]
        let direct = String(decoding: LineLogHandler.connectionTextLine(fields, level: .info), as: UTF8.self)
        let general = String(decoding: LineLogHandler.textLine(level: .info, message: "connection", metadata: fields.metadata), as: UTF8.self) + "\n"
        // Both start with the time, which may differ by a millisecond.
        #expect(direct.drop { $0 != " " } == general.drop { $0 != " " })
        #expect(direct.hasSuffix("\n") && !direct.dropLast().contains("\n"))
    }

    /// Values that need quotes are quoted byte by byte on the hot path; `JSONText.quote` (JSON lines) is the reference.
    @Test(arguments: ["", "plain", "we\"ird =name", #"back\slash"#, "tab\there", "\n\r", "\u{01}\u{1F}\u{7F}", "é — 日本 🙂"])
    func bytewiseQuotingMatchesQuote(text: String) {
        var bytes: [UInt8] = [UInt8(ascii: "x")]
        JSONText.appendQuoted(text, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "x" + JSONText.quote(text))
    }

    /// The reason a failed system call gives keeps its form while its text is cached.
    @Test func systemCallReasons() {
        #expect(SystemCallError("socket", errno: EPIPE).described(by: "client") == "client: socket: Broken pipe (errno 32)")
        #expect(SystemCallError("connect", errno: ECONNREFUSED).description == "connect: Connection refused (errno 111)")
        #expect(SystemCallError("recv", errno: 4_000).description == "recv: Unknown error 4000 (errno 4000)")
    }

    /// A ClientHello may offer many long protocol names; the line shows a few, each cut short, and a count.
    @Test func theALPNFieldIsBoundedWhateverTheClientOffers() {
        let offered = (0..<60).map { "p\($0)-" + String(repeating: "x", count: 198) }
        var fields = Self.lines[0]
        fields.alpn = offered
        let text = LineLogHandler.connectionTextLine(fields, level: .info)
        let json = LineLogHandler.jsonLine(level: .info, message: "connection", metadata: fields.metadata)
        #expect(text.count < 400, "\(text.count) bytes")
        #expect(json.utf8.count < 500, "\(json.utf8.count) bytes")
        let field = fields.alpnField ?? ""
        #expect(field.hasPrefix("p0-xxxxxxxxxxxxxxxxxxxxxxxxxxxxx~,p1-"))
        #expect(field.hasSuffix(",+56"))
        #expect(field.split(separator: ",").count == 5)
        // A multi-byte character is never cut in half.
        fields.alpn = [String(repeating: "é", count: 40)]
        #expect(fields.alpnField == String(repeating: "é", count: 16) + "~")
        // Ordinary offers pass untouched.
        fields.alpn = ["h2", "http/1.1"]
        #expect(fields.alpnField == "h2,http/1.1")
    }
}
