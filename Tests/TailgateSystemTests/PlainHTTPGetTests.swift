import Testing

@testable import TailgateSystem

/// The plain HTTP GET of `tailgate status` and the CrowdSec bouncer: URLs taken apart, answers parsed.
@Suite struct PlainHTTPGetTests {
    @Test func urlsAreTakenApart() throws {
        let plain = try PlainHTTPGet.Endpoint("127.0.0.1:9180")
        #expect(plain.authority == "127.0.0.1:9180" && plain.host == "127.0.0.1" && plain.port == 9180 && plain.basePath == "")
        let v6 = try PlainHTTPGet.Endpoint("http://[fd7a:115c:a1e0::1]:8080/crowdsec/")
        #expect(v6.host == "fd7a:115c:a1e0::1" && v6.port == 8080 && v6.basePath == "/crowdsec" && v6.authority == "[fd7a:115c:a1e0::1]:8080")
        let bareV6 = try PlainHTTPGet.Endpoint("http://[::1]")
        #expect(bareV6.host == "::1" && bareV6.port == 80)
        #expect(try PlainHTTPGet.Endpoint("http://lapi.local").port == 80)
        for bad in ["https://127.0.0.1", "http://127.0.0.1:99999", "http://:80", "http://[::1:80", "http://127.0.0.1:x"] {
            #expect(throws: PlainHTTPGet.Failure.self, "\(bad)") { try PlainHTTPGet.Endpoint(bad) }
        }
    }

    @Test func answersAreParsedAndChunkedBodiesJoined() throws {
        let plain = try PlainHTTPGet.parse(Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello".utf8), url: "u")
        #expect(plain.status == 200 && plain.headerLines == ["Content-Type: text/plain"] && plain.body == Array("hello".utf8))
        let chunked = try PlainHTTPGet.parse(
            Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n".utf8), url: "u"
        )
        #expect(chunked.body == Array("hello world".utf8))
        #expect(try PlainHTTPGet.parse(Array("HTTP/1.0 403 Forbidden\r\n\r\n".utf8), url: "u").status == 403)
        #expect(throws: PlainHTTPGet.Failure.self) { try PlainHTTPGet.parse(Array("HTTP/1.1 200 OK\r\n".utf8), url: "u") }
        #expect(throws: PlainHTTPGet.Failure.self) { try PlainHTTPGet.parse(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8), url: "u") }
        #expect(throws: PlainHTTPGet.Failure.self) {
            try PlainHTTPGet.parse(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nshort\r\n".utf8), url: "u")
        }
    }
}
