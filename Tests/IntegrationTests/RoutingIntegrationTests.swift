import Foundation
import TailgateTestSupport
import Testing

/// Real nginx upstreams behind a real tailgate, driven by curl.
@Suite(.serialized)
struct RoutingIntegrationTests {
    @Test func curlIsRoutedBySNIAndNginxSeesTheClientAddress() throws {
        let sandbox = try Sandbox("routing")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["ops.example.com", "*.ops.example.com", "app.example.com", "other.example.net"])
        let ops = try NginxUpstream.start("ops", in: sandbox)
        let service = try NginxUpstream.start("service", in: sandbox)
        let port = TestPort.free(), strictPort = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)", "[::1]:\(port)"]
            default = "service"
            [listeners.public.routes]
            "ops.example.com" = "ops"
            "*.ops.example.com" = "ops"
            "app.example.com" = "service"

            [listeners.strict]
            bind = ["127.0.0.1:\(strictPort)"]
            [listeners.strict.routes]
            "ops.example.com" = "ops"

            [upstreams.ops]
            servers = ["127.0.0.1:\(ops.proxyPort)"]
            send_proxy = "v2"
            [upstreams.service]
            servers = ["127.0.0.1:\(service.proxyPort)"]
            send_proxy = "v1"
            """, in: sandbox)

        let exact = curl(sandbox, host: "ops.example.com", port: port, extra: ["--interface", "127.0.0.7"])
        #expect(exact.status == 0)
        #expect(exact.output == "ops 127.0.0.7 ops.example.com\n")

        // Over IPv6 the client's v6 address reaches nginx through PROXY v2.
        let v6 = Command.run("/usr/bin/curl", ["-sS", "--max-time", "10", "--cacert", sandbox.path("ca.crt"),
                                               "--resolve", "ops.example.com:\(port):[::1]", "https://ops.example.com:\(port)/"])
        #expect(v6.output == "ops ::1 ops.example.com\n")

        let wildcard = curl(sandbox, host: "Jenkins.OPS.example.com", port: port)
        #expect(wildcard.output.lowercased() == "ops 127.0.0.1 jenkins.ops.example.com\n")
        let deep = curl(sandbox, host: "a.b.ops.example.com", port: port, extra: ["-k"])
        #expect(deep.output == "ops 127.0.0.1 a.b.ops.example.com\n")

        let app = curl(sandbox, host: "app.example.com", port: port)
        #expect(app.output == "service 127.0.0.1 app.example.com\n")

        let fallback = curl(sandbox, host: "other.example.net", port: port)
        #expect(fallback.output == "service 127.0.0.1 other.example.net\n")

        // No SNI at all (an IP literal): the default upstream.
        let noSNI = Command.run("/usr/bin/curl", ["-sS", "-k", "--max-time", "10", "https://127.0.0.1:\(port)/"])
        #expect(noSNI.output == "service 127.0.0.1 \n")

        // A listener without default closes connections whose name has no route.
        let refused = curl(sandbox, host: "other.example.net", port: strictPort)
        #expect(refused.status != 0)
        #expect(tailgate.waitForConnectionLine(containing: ["listener=strict", "sni=other.example.net", "outcome=no_route"]) != nil)
        #expect(curl(sandbox, host: "ops.example.com", port: strictPort).output == "ops 127.0.0.1 ops.example.com\n")

        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.7:", "sni=ops.example.com"])
        #expect(line?.contains("upstream=ops server=127.0.0.1:\(ops.proxyPort)") == true)
        #expect(line?.contains("outcome=closed") == true)
    }

    @Test func roundRobinMovesOnToTheNextServerWhenOneRefuses() throws {
        let sandbox = try Sandbox("roundrobin")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["app.example.com"])
        let first = try NginxUpstream.start("first", in: sandbox)
        let second = try NginxUpstream.start("second", in: sandbox)
        let dead = TestPort.free()
        let port = TestPort.free()
        _ = try TailgateInstance.start(config: """
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "app"
            [upstreams.app]
            servers = ["127.0.0.1:\(first.plainPort)", "127.0.0.1:\(dead)", "127.0.0.1:\(second.plainPort)"]
            connect_timeout = "2s"
            """, in: sandbox)
        var answers: [String: Int] = [:]
        for _ in 0..<9 {
            let result = curl(sandbox, host: "app.example.com", port: port)
            #expect(result.status == 0, "\(result.output)")
            answers[String(result.output.split(separator: " ").first ?? ""), default: 0] += 1
        }
        #expect(answers.keys.sorted() == ["first", "second"])
        #expect(answers.values.reduce(0, +) == 9)
    }

    @Test(arguments: RelayIntegrationTests.relays) func aHundredMebibytesCrossIntactBothWays(relay: String) throws {
        let sandbox = try Sandbox("bulk-\(relay)")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["files.example.com"])
        let upstream = try NginxUpstream.start("files", in: sandbox)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [global]
            relay = "\(relay)"
            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            default = "files"
            [upstreams.files]
            servers = ["127.0.0.1:\(upstream.proxyPort)"]
            send_proxy = "v2"
            """, in: sandbox)
        let source = sandbox.path("blob")
        _ = Command.run("/bin/sh", ["-c", "head -c 104857600 /dev/urandom > \(source)"], timeout: 60)
        let upload = curl(sandbox, host: "files.example.com", port: port, path: "/files/blob",
                          extra: ["-T", source, "--max-time", "120", "-o", "/dev/null", "-w", "%{http_code}"])
        #expect(upload.output == "201")
        let download = sandbox.path("blob.back")
        let fetched = curl(sandbox, host: "files.example.com", port: port, path: "/files/blob",
                           extra: ["--max-time", "120", "-o", download, "-w", "%{http_code}"])
        #expect(fetched.output == "200")
        let sums = Command.run("/usr/bin/sha256sum", [source, "\(upstream.root)/files/blob", download], timeout: 60).output
            .split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(sums.count == 3)
        #expect(Set(sums).count == 1, "checksums differ: \(sums)")
        let lines = tailgate.connectionLines.filter { $0.contains("sni=files.example.com") }
        #expect(lines.contains { line in
            line.split(separator: " ").contains { $0.hasPrefix("bytes_in=") && (Int($0.dropFirst(9)) ?? 0) > 104_857_600 }
        })
        #expect(lines.contains { line in
            line.split(separator: " ").contains { $0.hasPrefix("bytes_out=") && (Int($0.dropFirst(10)) ?? 0) > 104_857_600 }
        })
    }
}
