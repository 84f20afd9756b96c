import Foundation
import NIOCore
import Testing
import TailgateProbe
import TailgateTestSupport

/// TLS checks against `openssl s_server` with the bed's certificates.
@Suite struct TLSProbeTests {
    let bed: TestBed

    init() throws {
        bed = try TestBed()
    }

    private func check(_ server: SocketAddress, name: String? = "app.example.test", caFile: String? = "ca.crt") -> ProbeResult {
        UpstreamProbe.run(ProbeRequest(
            kind: .tls, server: server, timeout: .seconds(5), serverName: name, caFile: caFile.map { bed.path($0) }
        ))
    }

    @Test func aTrustedCurrentCertificateForTheNameIsHealthyAndItsNotAfterIsRecorded() throws {
        let result = check(try bed.startTLSServer(certificate: "app"))
        #expect(result.failure == nil)
        #expect(result.isHealthy)
        #expect(result.summary == "ok")
        #expect(result.certificateNotAfter == TestBed.appNotAfter)
        #expect(result.duration > .zero && result.duration < .seconds(5))
    }

    @Test func anExpiredCertificateIsReportedAsExpiredWithItsNotAfterInThePast() throws {
        let result = check(try bed.startTLSServer(certificate: "expired"))
        #expect(result.failure == .certificateExpired)
        #expect(result.summary == "certificate expired")
        #expect(result.certificateNotAfter == TestBed.expiredNotAfter)
        #expect(try #require(result.certificateNotAfter) < Int64(Date().timeIntervalSince1970))
    }

    @Test func aCertificateThatIsNotValidYetIsReportedAsSuch() throws {
        let result = check(try bed.startTLSServer(certificate: "future"))
        #expect(result.failure == .certificateNotYetValid)
        #expect(result.summary == "certificate not yet valid")
        #expect(result.certificateNotAfter == TestBed.futureNotAfter)
    }

    @Test func aSelfSignedCertificateIsUntrustedAndSaysWhy() throws {
        let result = check(try bed.startTLSServer(certificate: "self-signed"))
        #expect(result.failure == .certificateUntrusted("self-signed certificate"))
        #expect(result.summary == "certificate not trusted: self-signed certificate")
        #expect(result.certificateNotAfter != nil)
    }

    @Test func aCertificateForAnotherNameIsAHostnameMismatch() throws {
        let result = check(try bed.startTLSServer(certificate: "other"))
        #expect(result.failure == .hostnameMismatch)
        #expect(result.summary == "certificate is for another name")
        #expect(result.certificateNotAfter != nil)
    }

    @Test func withoutAServerNameTheChainAndDatesAreCheckedButNotTheName() throws {
        let other = try bed.startTLSServer(certificate: "other")
        #expect(check(other, name: nil).failure == nil)
        let expired = try bed.startTLSServer(certificate: "expired")
        #expect(check(expired, name: nil).failure == .certificateExpired)
    }

    @Test func anIPAddressAsServerNameIsCheckedAgainstTheCertificatesAddresses() throws {
        let server = try bed.startTLSServer(certificate: "app")
        #expect(check(server, name: "127.0.0.1").failure == nil)
        #expect(check(server, name: "127.0.0.2").failure == .hostnameMismatch)
        #expect(check(server, name: "other.example.test").failure == .hostnameMismatch)
    }

    @Test func theSystemStoreDoesNotTrustTheTestAuthority() throws {
        let server = try bed.startTLSServer(certificate: "app")
        let result = check(server, caFile: nil)
        #expect(result.failure == .certificateUntrusted("unable to get local issuer certificate"))
        #expect(result.certificateNotAfter == TestBed.appNotAfter)
        #expect(check(server, caFile: "ca.crt").failure == nil)
    }

    @Test func aReplacedCAFileIsReadAgainAtTheNextCheck() throws {
        let server = try bed.startTLSServer(certificate: "app")
        let trust = URL(fileURLWithPath: bed.path("trust.pem"))
        try Data(contentsOf: URL(fileURLWithPath: bed.path("ca.crt"))).write(to: trust, options: .atomic)
        #expect(check(server, caFile: "trust.pem").failure == nil)
        try Data(contentsOf: URL(fileURLWithPath: bed.path("self-signed.crt"))).write(to: trust, options: .atomic)
        #expect(check(server, caFile: "trust.pem").failure == .certificateUntrusted("unable to get local issuer certificate"))
    }

    @Test func anUnreadableCAFileFailsTheCheckBeforeConnecting() throws {
        // A closed port: had the probe connected, the failure would be .refused.
        let port = TestPort.refusing
        let result = check(try SocketAddress(ipAddress: "127.0.0.1", port: port), caFile: "missing.pem")
        guard case .certificateUntrusted(let reason) = result.failure else {
            Issue.record("expected an untrusted certificate failure, got \(String(describing: result.failure))")
            return
        }
        #expect(reason == "cannot load CA file \(bed.path("missing.pem")): No such file or directory")
    }

    @Test func aServerThatRejectsTheHandshakeIsAHandshakeFailureWithItsAlert() throws {
        // TLS 1.2 with anonymous ciphers only, which the probe does not offer: the server sends an alert.
        let server = try bed.startTLSServer(certificate: "app", options: ["-no_tls1_3", "-cipher", "aNULL"])
        let result = check(server)
        #expect(result.failure == .handshake("sslv3 alert handshake failure"))
        #expect(result.summary == "TLS handshake failed: sslv3 alert handshake failure")
        #expect(result.certificateNotAfter == nil)
    }

    @Test func aTLSCheckOfAClosedPortIsRefused() throws {
        let port = TestPort.refusing
        let result = check(try SocketAddress(ipAddress: "127.0.0.1", port: port))
        #expect(result.failure == .refused)
        #expect(result.summary == "connection refused")
    }

    @Test func aListenerThatNeverAnswersTheHandshakeTimesOutOnTime() throws {
        let listener = try LoopbackListener(backlog: 8)
        let timeout = Duration.milliseconds(400)
        let result = UpstreamProbe.run(ProbeRequest(
            kind: .tls, server: try listener.address, timeout: timeout, serverName: "app.example.test", caFile: bed.path("ca.crt")
        ))
        #expect(result.failure == .timeout)
        #expect(result.summary == "timed out")
        #expect(result.duration >= timeout)
        // The deadline ended the handshake, which would otherwise wait for ever. (How long a wait of the probe
        // lasts is ProbeDeadlineTests' to say; this bound leaves a busy machine its delays.)
        #expect(result.duration < .seconds(5), "\(result.duration)")
        // The probe did send its ClientHello: a TLS handshake record.
        #expect(try listener.acceptAndRead().first == 0x16)
    }
}
