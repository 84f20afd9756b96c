import Testing
import TailgateProbe

@Suite struct ProbeResultTests {
    @Test func eachOutcomeHasAShortPhrase() {
        let phrases: [(ProbeResult.Failure?, String)] = [
            (nil, "ok"),
            (.refused, "connection refused"),
            (.timeout, "timed out"),
            (.network("Connection reset by peer"), "network error: Connection reset by peer"),
            (.handshake("tlsv1 alert internal error"), "TLS handshake failed: tlsv1 alert internal error"),
            (.certificateExpired, "certificate expired"),
            (.certificateNotYetValid, "certificate not yet valid"),
            (.certificateUntrusted("self-signed certificate"), "certificate not trusted: self-signed certificate"),
            (.hostnameMismatch, "certificate is for another name"),
        ]
        for (failure, phrase) in phrases {
            let result = ProbeResult(failure: failure, duration: .milliseconds(3))
            #expect(result.summary == phrase)
            #expect(result.isHealthy == (failure == nil))
        }
    }

    @Test func aRequestDefaultsToNoNameTheSystemStoreAndNoPreamble() throws {
        let request = ProbeRequest(kind: .tls, server: try .init(ipAddress: "127.0.0.1", port: 443), timeout: .seconds(2))
        #expect(request.serverName == nil)
        #expect(request.caFile == nil)
        guard case .none = request.preamble else {
            Issue.record("expected no preamble")
            return
        }
    }
}
