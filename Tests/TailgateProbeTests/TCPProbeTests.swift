import NIOCore
import Testing
import TailgateProbe
import TailgateTestSupport

/// TCP checks against sockets of the test's own.
@Suite struct TCPProbeTests {
    private func check(_ server: SocketAddress, timeout: Duration = .seconds(5), preamble: ProbeRequest.ProxyPreamble = .none) -> ProbeResult {
        UpstreamProbe.run(ProbeRequest(kind: .tcp, server: server, timeout: timeout, preamble: preamble))
    }

    @Test func aTCPCheckOfAListeningPortIsHealthy() throws {
        let listener = try LoopbackListener(backlog: 8)
        let result = check(try listener.address)
        #expect(result.failure == nil)
        #expect(result.summary == "ok")
        #expect(result.certificateNotAfter == nil)
        #expect(result.duration < .seconds(5))
        // Nothing is sent without a preamble: the probe connects and closes.
        #expect(try listener.acceptAndRead().isEmpty)
    }

    @Test func aTCPCheckOfAClosedPortIsRefused() throws {
        let result = check(try SocketAddress(ipAddress: "127.0.0.1", port: TestPort.refusing))
        #expect(result.failure == .refused)
        #expect(result.summary == "connection refused")
    }

    @Test func aConnectThatIsNeverAnsweredTimesOutOnTime() throws {
        // With its accept queue full, the listener's kernel drops the probe's SYN.
        let listener = try LoopbackListener(backlog: 0)
        try listener.fillAcceptQueue()
        let timeout = Duration.milliseconds(300)
        let result = check(try listener.address, timeout: timeout)
        #expect(result.failure == .timeout)
        #expect(result.duration >= timeout)
        // The deadline, not the kernel, ended the connect: the SYN retries would take over a minute. (How long
        // a wait of the probe lasts is ProbeDeadlineTests' to say; this bound leaves a busy machine its delays.)
        #expect(result.duration < .seconds(5), "\(result.duration)")
    }

    @Test func aV1PreambleIsTheUnknownLine() throws {
        let listener = try LoopbackListener(backlog: 8)
        #expect(check(try listener.address, preamble: .v1).failure == nil)
        #expect(try listener.acceptAndRead() == Array("PROXY UNKNOWN\r\n".utf8))
    }

    @Test func aV2PreambleIsALocalHeaderWithoutAddresses() throws {
        let listener = try LoopbackListener(backlog: 8)
        #expect(check(try listener.address, preamble: .v2).failure == nil)
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        #expect(try listener.acceptAndRead() == signature + [0x20, 0x00, 0x00, 0x00])
    }

    @Test func anIPv6LoopbackListenerCanBeChecked() throws {
        // Refused rather than healthy is fine where the machine has no ::1; both mean the probe spoke IPv6.
        let result = check(try SocketAddress(ipAddress: "::1", port: TestPort.free()))
        #expect(result.failure == .refused || result.failure == .network("Cannot assign requested address"))
    }
}
