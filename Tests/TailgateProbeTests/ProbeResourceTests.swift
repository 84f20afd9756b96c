import Foundation
import NIOCore
import Synchronization
import Testing
import TailgateProbe
import TailgateTestSupport

/// Many checks, on every path, from several threads at once.
@Suite struct ProbeResourceTests {
    @Test func hundredsOfChecksFromSeveralThreadsLeakNeitherMemoryNorDescriptors() throws {
        let bed = try TestBed()
        let app = try bed.startTLSServer(certificate: "app")
        let closed = try SocketAddress(ipAddress: "127.0.0.1", port: TestPort.refusing)
        func tls(_ server: SocketAddress, name: String = "app.example.test", caFile: String? = bed.path("ca.crt")) -> ProbeRequest {
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
        let ports = Set([app.port, closed.port].compactMap { $0 })
        // Three equal batches: a leak grows memory in each, while other tests running alongside
        // (they share this process) rarely disturb all three; the smallest growth counts.
        var residentGrowth: [Int] = []
        var descriptorGrowth: [Int] = []
        for _ in 0..<3 {
            let residentBefore = try Self.residentBytes()
            let descriptorsBefore = try Self.checkDescriptors(ports: ports, under: bed.path(""))
            DispatchQueue.concurrentPerform(iterations: 4) { _ in runAll(rounds: 20) }
            residentGrowth.append(try Self.residentBytes() - residentBefore)
            descriptorGrowth.append(try Self.checkDescriptors(ports: ports, under: bed.path("")) - descriptorsBefore)
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

    /// This process's descriptors that a check could have left open: TCP sockets whose peer is
    /// one of `ports` and files under `directory`. Other tests share the process and open
    /// thousands of descriptors of their own (the silent-connections test holds 2,000), so a
    /// count of /proc/self/fd measures them too.
    private static func checkDescriptors(ports: Set<Int>, under directory: String) throws -> Int {
        var inodes: Set<String> = []
        for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
            guard let text = ProcFile.read(table) else { throw TestFailure("cannot open \(table)") }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, let colon = fields[2].lastIndex(of: ":"),
                      let port = Int(fields[2][fields[2].index(after: colon)...], radix: 16),
                      ports.contains(port) else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        var count = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)")
            else { continue }
            if target.hasPrefix(directory) { count += 1 }
            if target.hasPrefix("socket:["), inodes.contains(String(target.dropFirst(8).dropLast())) { count += 1 }
        }
        return count
    }
}
