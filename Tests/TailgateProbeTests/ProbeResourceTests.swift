import Foundation
import NIOCore
import Synchronization
import Testing
import TailgateProbe

/// Many checks, on every path, from several threads at once.
@Suite struct ProbeResourceTests {
    @Test func hundredsOfChecksFromSeveralThreadsLeakNeitherMemoryNorDescriptors() throws {
        let bed = try TestBed()
        let app = try bed.startTLSServer(certificate: "app.pem")
        let closed = try SocketAddress(ipAddress: "127.0.0.1", port: try Loopback.unusedPort())
        func tls(_ server: SocketAddress, name: String = "app.example.test", caFile: String? = bed.path("ca.pem")) -> ProbeRequest {
            ProbeRequest(kind: .tls, server: server, timeout: .seconds(10), serverName: name, caFile: caFile)
        }
        let cases: [(ProbeRequest, ProbeResult.Failure?)] = [
            (tls(app), nil),
            (tls(app, name: "other.example.test"), .hostnameMismatch),
            (tls(app, caFile: nil), .certificateUntrusted("unable to get local issuer certificate")),
            (tls(closed), .refused),
            (tls(app, caFile: bed.path("missing.pem")), .certificateUntrusted(
                "cannot load CA file \(bed.path("missing.pem")): No such file or directory")),
            (ProbeRequest(kind: .tcp, server: app, timeout: .seconds(10)), nil),
        ]
        let unexpected = Mutex<[String]>([])
        @Sendable func runAll(rounds: Int) {
            for _ in 0..<rounds {
                for (request, expected) in cases {
                    let result = UpstreamProbe.run(request)
                    if result.failure != expected {
                        unexpected.withLock { $0.append("\(result.summary), expected \(String(describing: expected))") }
                    }
                }
            }
        }
        runAll(rounds: 5)
        // Two equal batches: a leak grows memory in both, while other tests running alongside
        // rarely disturb both; the smaller growth counts.
        var residentGrowth: [Int] = []
        var descriptorGrowth: [Int] = []
        for _ in 0..<2 {
            let residentBefore = try Self.residentBytes()
            let descriptorsBefore = try Self.openDescriptors()
            DispatchQueue.concurrentPerform(iterations: 4) { _ in runAll(rounds: 20) }
            residentGrowth.append(try Self.residentBytes() - residentBefore)
            descriptorGrowth.append(try Self.openDescriptors() - descriptorsBefore)
        }

        let mismatches = unexpected.withLock { $0 }
        #expect(mismatches.isEmpty, "\(mismatches.count) unexpected results, the first: \(mismatches.first ?? "")")
        // 480 checks a batch, 240 of them handshakes; leaking OpenSSL's SSL object (some 33 KB
        // with its buffers, measured) on each would be 8 MB a batch. Without a leak: under 0.2 MB.
        #expect(residentGrowth.min() ?? 0 < 2 << 20, "resident memory grew by \(residentGrowth) bytes")
        #expect(descriptorGrowth.min() ?? 0 < 8, "\(descriptorGrowth) more descriptors open")
    }

    /// This process's resident set size, from /proc/self/statm.
    private static func residentBytes() throws -> Int {
        let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { throw TestFailure("cannot read /proc/self/statm") }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }

    private static func openDescriptors() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
    }
}
