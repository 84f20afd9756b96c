import Foundation
import NIOCore
import Testing
import TailgateWire
@testable import TailgateProxy

private func capture(_ name: String) throws -> [UInt8] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    return Array(try Data(contentsOf: root.appendingPathComponent("TailgateWireTests/Captures/\(name)")))
}

/// Feeds `bytes` in pieces of `step` and returns every action plus the bytes left in the buffer.
private func feed(_ bytes: [UInt8], step: Int, expectProxyHeader: Bool) -> (actions: [AdmissionStateMachine.Action], rest: ByteBuffer, machine: AdmissionStateMachine) {
    var machine = AdmissionStateMachine(expectProxyHeader: expectProxyHeader)
    var buffer = ByteBuffer()
    var actions: [AdmissionStateMachine.Action] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(offset + step, bytes.count)
        buffer.writeBytes(bytes[offset..<end])
        offset = end
        let action = machine.process(&buffer)
        actions.append(action)
        if action != .needMoreData { break }
    }
    return (actions, buffer, machine)
}

@Test func aClientHelloIsAdmittedOnlyOnceComplete() throws {
    let hello = try capture("openssl-sni-alpn.bin")
    for step in [1, 7, 100, hello.count] {
        let (actions, rest, _) = feed(hello, step: step, expectProxyHeader: false)
        #expect(actions.dropLast().allSatisfy { $0 == .needMoreData })
        guard case .admit(let info) = actions.last else {
            Issue.record("not admitted at step \(step): \(String(describing: actions.last))")
            continue
        }
        #expect(info.serverName == "tailgate.example.test")
        #expect(rest.readableBytes == hello.count, "the ClientHello stays in the buffer to be forwarded")
    }
}

@Test func aTrustedPeersHeaderIsConsumedAndKept() throws {
    let hello = try capture("curl.bin")
    let header = Array("PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n".utf8)
    let (actions, rest, machine) = feed(header + hello, step: 5, expectProxyHeader: true)
    guard case .admit(let info) = actions.last else {
        Issue.record("not admitted: \(String(describing: actions.last))")
        return
    }
    #expect(info.serverName == "www.example.test")
    #expect(machine.proxyHeader?.source?.ipAddress == "2001:db8::1")
    #expect(machine.proxyHeader?.source?.port == 40000)
    #expect(rest.readableBytes == hello.count)
}

@Test func aTrustedPeerWithoutHeaderIsRejectedAtTheFirstByte() throws {
    let hello = try capture("curl.bin")
    let (actions, _, _) = feed(hello, step: 1, expectProxyHeader: true)
    #expect(actions == [.reject(.badProxyHeader, reason: "missing_proxy_header")])
}

@Test func anUntrustedPeersHeaderIsNeverParsed() {
    let (actions, _, machine) = feed(Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8), step: 64, expectProxyHeader: false)
    #expect(actions == [.reject(.badClientHello, reason: "not_tls")])
    #expect(machine.proxyHeader == nil)
}

@Test func theTimeoutReasonSaysWhatWasAwaited() {
    var machine = AdmissionStateMachine(expectProxyHeader: true)
    #expect(machine.timeoutReason == "waiting_for_proxy_header")
    var buffer = ByteBuffer(bytes: Array("PROXY UNKNOWN\r\n".utf8) + [0x16])
    #expect(machine.process(&buffer) == .needMoreData)
    #expect(machine.timeoutReason == "waiting_for_client_hello")
}

@Test func theSnifferRunsOnlyWhenARecordCompletesSoDribblingCostsLinearTime() throws {
    let hello = try capture("chromium-mlkem-fragmented.bin")
    // Byte by byte, a multi-record ClientHello is still admitted at its last byte…
    let (actions, _, _) = feed(hello, step: 1, expectProxyHeader: false)
    guard case .admit = actions.last else {
        Issue.record("not admitted: \(String(describing: actions.last))")
        return
    }
    #expect(actions.count == hello.count)
    // …and the gate opens only at record boundaries of a plausible handshake record.
    var boundaries = 0
    for end in 1...hello.count where AdmissionStateMachine.endsOnRecordBoundary(ByteBuffer(bytes: hello[0..<end])) {
        boundaries += 1
    }
    var records = 0, offset = 0
    while offset + 5 <= hello.count {
        records += 1
        offset += 5 + Int(hello[offset + 3]) << 8 + Int(hello[offset + 4])
    }
    #expect(records >= 2)
    #expect(boundaries == records, "sniffed \(boundaries) times for \(records) records")
    // Anything that is not a handshake record is judged at once.
    #expect(AdmissionStateMachine.endsOnRecordBoundary(ByteBuffer(bytes: Array("GET / HTTP/1.1\r\n".utf8))))
    #expect(AdmissionStateMachine.endsOnRecordBoundary(ByteBuffer(bytes: [0x16, 0x02])))
    #expect(AdmissionStateMachine.endsOnRecordBoundary(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x40, 0x01])))
    #expect(!AdmissionStateMachine.endsOnRecordBoundary(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x02])))
}

@Test func aPlainTCPConnectionIsAdmittedAtOnceWithoutAHeaderToWaitFor() {
    let machine = AdmissionStateMachine(expectProxyHeader: false, plainTCP: true)
    #expect(machine.admitsAtOnce)
    #expect(!AdmissionStateMachine(expectProxyHeader: false).admitsAtOnce)
    #expect(!AdmissionStateMachine(expectProxyHeader: true, plainTCP: true).admitsAtOnce)
}

@Test func aPlainTCPConnectionFromATrustedPeerIsAdmittedWhenItsHeaderIsIn() {
    let header = Array("PROXY TCP4 198.51.100.7 203.0.113.1 40000 22\r\n".utf8)
    let banner = Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)
    for step in 1...header.count {
        var machine = AdmissionStateMachine(expectProxyHeader: true, plainTCP: true)
        var buffer = ByteBuffer()
        var actions: [AdmissionStateMachine.Action] = []
        var offset = 0
        let bytes = header + banner
        while offset < bytes.count, actions.last == nil || actions.last == .needMoreData {
            let end = min(offset + step, bytes.count)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            actions.append(machine.process(&buffer))
        }
        #expect(actions.last == .admit(.none), "step \(step)")
        #expect(machine.proxyHeader?.source?.ipAddress == "198.51.100.7")
        // Whatever followed the header in the same reads is kept for the upstream.
        #expect(buffer.readableBytes == offset - header.count, "step \(step)")
    }
}
