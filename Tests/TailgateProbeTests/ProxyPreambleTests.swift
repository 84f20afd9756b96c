import Testing
import TailgateProbe

/// Checks of nginx listening with `ssl proxy_protocol`.
@Suite struct ProxyPreambleTests {
    @Test func aProxyProtocolUpstreamPassesATLSCheckOnlyWithAPreamble() throws {
        let bed = try TestBed()
        let server = try bed.startProxyProtocolNginx()
        func check(_ kind: ProbeRequest.Kind, _ preamble: ProbeRequest.ProxyPreamble) -> ProbeResult {
            UpstreamProbe.run(ProbeRequest(
                kind: kind, server: server, timeout: .seconds(5), serverName: "app.example.test",
                caFile: bed.path("ca.crt"), preamble: preamble
            ))
        }
        // nginx takes the ClientHello for a broken PROXY header and closes the connection,
        // with a reset when part of the ClientHello is still unread.
        let without = check(.tls, .none)
        #expect([.handshake("connection closed by the server"), .network("Connection reset by peer")].contains(without.failure))
        #expect(without.certificateNotAfter == nil)

        let v2 = check(.tls, .v2)
        #expect(v2.failure == nil)
        #expect(v2.certificateNotAfter == TestBed.appNotAfter)
        #expect(check(.tls, .v1).failure == nil)
        #expect(check(.tcp, .v2).failure == nil)
    }
}
