import Glibc
import NIOCore
import Testing

@testable import TailgateSystem

/// The one connect with a deadline (the checks, `tailgate status`) and the waits it is built on.
@Suite struct OutgoingConnectionTests {
    static let now = NIODeadline.uptimeNanoseconds(5_000_000_000)

    @Test func aWaitLastsAtMostTheTimeLeftRoundedUpToAMillisecond() {
        #expect(OutgoingConnection.pollMilliseconds(until: Self.now + .seconds(60) + .microseconds(300), now: Self.now) == 60_001)
        #expect(OutgoingConnection.pollMilliseconds(until: Self.now + .milliseconds(7), now: Self.now) == 7)
    }

    @Test func lessThanAMillisecondLeftIsAWaitOfOneNotOfNone() {
        // Rounded down, the wait would end short of the deadline and the loop around it would spin.
        #expect(OutgoingConnection.pollMilliseconds(until: Self.now + .microseconds(500), now: Self.now) == 1)
        #expect(OutgoingConnection.pollMilliseconds(until: Self.now + .nanoseconds(1), now: Self.now) == 1)
    }

    @Test func aPassedDeadlineLeavesNoWait() {
        #expect(OutgoingConnection.pollMilliseconds(until: Self.now, now: Self.now) == nil)
        #expect(OutgoingConnection.pollMilliseconds(until: Self.now - .milliseconds(5), now: Self.now) == nil)
    }

    /// A port bound and not listening refuses at once: the error names the call and errno.
    @Test func aRefusedConnectSaysSoAndLeavesNothingOpen() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) == 0 && getsockname(holder, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let refusing = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let error = #expect(throws: SystemCallError.self) {
            _ = try OutgoingConnection.connect(to: refusing, deadline: .now() + .seconds(5))
        }
        #expect(error?.call == "connect" && error?.errno == ECONNREFUSED, "\(String(describing: error))")
    }
}
