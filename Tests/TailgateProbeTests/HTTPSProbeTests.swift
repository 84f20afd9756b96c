import NIOCore
import TailgateTestSupport
import Testing
@testable import TailgateProbe

/// `https` checks: the handshake, then `GET path` and the status line.
@Suite struct HTTPSProbeTests {
    @Test func aServerThatAnswers200IsHealthy() throws {
        let bed = try TestBed()
        // `openssl s_server -www` answers every GET with "HTTP/1.0 200 ok".
        let server = try bed.startTLSServer(certificate: "app")
        let result = UpstreamProbe.run(ProbeRequest(
            kind: .tls, server: server, timeout: .seconds(5), serverName: "app.example.test", caFile: bed.path("ca.crt"), httpPath: "/healthz"
        ))
        #expect(result.failure == nil, "\(result.summary)")
        #expect(result.certificateNotAfter == TestBed.appNotAfter)
    }

    @Test func aCertificateThatFailsIsReportedBeforeAnyRequest() throws {
        let bed = try TestBed()
        let request = ProbeRequest(kind: .tls, server: try bed.startTLSServer(certificate: "expired"), timeout: .seconds(5),
                                   serverName: "app.example.test", caFile: bed.path("ca.crt"), httpPath: "/")
        #expect(UpstreamProbe.run(request).failure == .certificateExpired)
    }

    @Test func theStatusLineDecides() {
        func failure(_ head: String) -> ProbeResult.Failure? { UpstreamProbe.statusFailure(Array(head.utf8)) }
        #expect(failure("HTTP/1.1 200 OK\r\n") == nil)
        #expect(failure("HTTP/1.0 204 \r\n") == nil)
        #expect(failure("HTTP/1.1 302 Found\r\nLocation: /login\r\n") == nil)
        #expect(failure("HTTP/1.1 404 Not Found\r\n") == .httpStatus(404))
        #expect(failure("HTTP/1.1 503 Service Unavailable\r\n") == .httpStatus(503))
        #expect(failure("HTTP/1.1 199 Odd\r\n") == .httpStatus(199))
        #expect(failure("SSH-2.0-OpenSSH_9.2\r\n") == .httpResponse("not an HTTP/1.x status line: \"SSH-2.0-OpenSSH_9.2\""))
        #expect(failure("HTTP/1.1 2000 OK\r\n") == .httpResponse("not an HTTP/1.x status line: \"HTTP/1.1 2000 OK\""))
        #expect(failure("HTTP/2 200\r\n") == .httpResponse("not an HTTP/1.x status line: \"HTTP/2 200\""))
        #expect(failure("\u{1}\u{2}binary\n") == .httpResponse("not an HTTP/1.x status line: \"??binary\""))
        #expect(ProbeResult(failure: .httpStatus(503), duration: .zero).summary == "HTTP status 503")
    }
}
