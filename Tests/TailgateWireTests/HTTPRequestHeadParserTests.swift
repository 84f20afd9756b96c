import NIOCore
import Testing
import TailgateWire

/// The request head reader fed whole, at every split point, and with each kind of bad input.
@Suite struct HTTPRequestHeadParserTests {
    let parser = HTTPRequestHeadParser(limit: 8_192)

    func parse(_ text: String) throws(HTTPRequestHeadError) -> HTTPRequestHead? {
        try parser.parse(ByteBuffer(string: text))
    }

    @Test func aHeadIsReadOnlyOnceCompleteAtEverySplitPoint() throws {
        let text = "GET /a/b?x=1 HTTP/1.1\r\nUser-Agent: curl/7.88\r\nHost: App.Example.com.:8080\r\nAccept: */*\r\n\r\nbody-after"
        let end = text.utf8.count - "body-after".utf8.count
        for split in 1..<text.utf8.count {
            let prefix = String(decoding: Array(text.utf8)[0..<split], as: UTF8.self)
            let head = try parse(prefix)
            if split < end {
                #expect(head == nil, "complete at \(split) of \(end)")
            } else {
                #expect(head == HTTPRequestHead(method: "GET", target: "/a/b?x=1", version: "HTTP/1.1", host: "app.example.com", byteCount: end))
            }
        }
    }

    @Test func bareLineFeedsAndHTTP10WithoutHostAreAccepted() throws {
        #expect(try parse("GET / HTTP/1.1\nHost: example.com\n\n")?.host == "example.com")
        let old = try parse("GET / HTTP/1.0\r\n\r\n")
        #expect(old?.host == nil && old?.version == "HTTP/1.0")
        #expect(try parse("GET / HTTP/1.1\r\nHOST:\t[2001:db8::1]:80 \r\n\r\n")?.host == "[2001:db8::1]")
    }

    @Test func absoluteFormTargetsRedirectToTheirPath() throws {
        #expect(try parse("GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n")?.pathAndQuery == "/p?q")
        #expect(try parse("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")?.pathAndQuery == "/")
        #expect(try parse("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n")?.pathAndQuery == "/")
    }

    @Test func badHeadsAreRefusedWithTheirReason() {
        let cases: [(String, HTTPRequestHeadError)] = [
            ("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", .missingHost),
            ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", .duplicateHost),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", .badHost),
            ("GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", .badHost),
            ("GET / HTTP/1.1\r\nHost: \r\n\r\n", .badHost),
            ("GET / HTTP/1.1\r\nHost: app.example..:80\r\n\r\n", .badHost),
            ("GET / HTTP/1.1\r\nHost: .example.com\r\n\r\n", .badHost),
            ("GET / HTTP/1.1\r\r\n\r\n", .malformed),
            ("GET /index.html\r\n", .http09),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", .malformed),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .malformed),
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .malformed),
            ("GET / HTTP/1.1\r\nBad Header: x\r\nHost: a\r\n\r\n", .malformed),
            ("GET / HTTP/1.1\r\n: x\r\nHost: a\r\n\r\n", .malformed),
            ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .malformed),
            ("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}", .tls),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text.debugDescription)") { try parse(text) }
        }
        #expect(throws: HTTPRequestHeadError.tooLarge) {
            try parse("GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-A: b\r\n", count: 2_000))
        }
        #expect(HTTPRequestHeadError.tooLarge.status == 431 && HTTPRequestHeadError.missingHost.status == 400)
    }

    /// Random bytes never crash the reader, and never make it accept more than the limit.
    @Test func garbageNeverCrashesIt() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in
                [UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: " "), UInt8(ascii: ":"), UInt8.random(in: 0...255, using: &generator)].randomElement(using: &generator)!
            }
            if let head = try? parser.parse(ByteBuffer(bytes: bytes)) { #expect(head.byteCount <= bytes.count) }
        }
    }
}
