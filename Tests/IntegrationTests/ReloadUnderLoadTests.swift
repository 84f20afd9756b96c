import Foundation
import TailgateTestSupport
import Testing

/// Fifty SIGHUPs that change routes, upstreams and listeners while long transfers and a steady
/// stream of new TLS connections go through: nothing in flight may fail, every change must show.
@Suite(.serialized)
struct ReloadUnderLoadTests {
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var failures: [String] = []
        private var successes = 0
        func record(_ ok: Bool, _ detail: String) {
            lock.withLock { if ok { successes += 1 } else { failures.append(detail) } }
        }
        var result: (successes: Int, failures: [String]) { lock.withLock { (successes, failures) } }
    }

    final class StopFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }

    @Test func fiftyReloadsUnderLoadDropNothing() throws {
        let sandbox = try Sandbox("reload-load")
        defer { sandbox.tearDown() }
        try sandbox.certificates.issue("server", dnsNames: ["example.com", "*.example.com"])
        let blue = try NginxUpstream.start("blue", in: sandbox)
        let green = try NginxUpstream.start("green", in: sandbox)
        for upstream in [blue, green] {
            _ = Command.run("/bin/sh", ["-c", "head -c 41943040 /dev/zero | tr '\\\\0' 'x' > \(upstream.root)/files/big"])
        }
        let main = TestPort.free(), extraA = TestPort.free(), extraB = TestPort.free()

        func config(_ round: Int) -> String {
            let even = round % 2 == 0
            var text = """
                [listeners.main]
                bind = ["127.0.0.1:\(main)"]
                default = "\(even ? "blue" : "green")"
                [listeners.main.routes]
                "stable.example.com" = "blue"
                "round\(round).example.com" = "\(even ? "green" : "blue")"
                "app.example.com" = "app"

                """
            // One listener is added while another is removed, alternately.
            text += even
                ? "[listeners.extra_a]\nbind = [\"127.0.0.1:\(extraA)\"]\ndefault = \"app\"\n"
                : "[listeners.extra_b]\nbind = [\"127.0.0.1:\(extraB)\"]\ndefault = \"app\"\n"
            text += """
                [upstreams.blue]
                servers = ["127.0.0.1:\(blue.proxyPort)"]
                send_proxy = "v2"
                [upstreams.green]
                servers = ["127.0.0.1:\(green.proxyPort)"]
                send_proxy = "v1"
                [upstreams.app]
                servers = ["127.0.0.1:\(even ? blue.plainPort : green.plainPort)"]
                """
            return text
        }

        let tailgate = try TailgateInstance.start(config: config(0), in: sandbox)
        // Long transfers: 40 MiB each at 4 MiB/s, through the main listener (both upstreams).
        var downloads: [(ChildProcess, String)] = []
        for (index, host) in ["stable.example.com", "anything.example.com", "stable.example.com"].enumerated() {
            let output = sandbox.path("big.\(index)")
            let process = try sandbox.start("download-\(index)", "/usr/bin/curl", [
                "-sS", "--cacert", sandbox.path("ca.crt"), "--limit-rate", "4M", "--resolve", "\(host):\(main):127.0.0.1",
                "-o", output, "-w", "%{http_code} %{size_download}", "https://\(host):\(main)/files/big",
            ])
            downloads.append((process, output))
        }
        // A steady stream of new TLS connections on a background thread.
        let tally = Tally()
        let stop = StopFlag()
        let churn = Thread {
            while !stop.isSet {
                let result = curl(sandbox, host: "stable.example.com", port: main)
                tally.record(result.status == 0 && result.output == "blue 127.0.0.1 stable.example.com\n", "status \(result.status): \(result.output)")
            }
        }
        churn.start()

        var effects: [String] = []
        for round in 1...50 {
            #expect(try tailgate.reload(config(round)), "round \(round)")
            let even = round % 2 == 0
            // The new route, the new default and the new upstream servers answer at once.
            let routed = curl(sandbox, host: "round\(round).example.com", port: main).output
            if routed != "\(even ? "green 127.0.0.1" : "blue 127.0.0.1") round\(round).example.com\n" { effects.append("round \(round) route: \(routed)") }
            let fallback = curl(sandbox, host: "nothing.example.com", port: main).output
            if !fallback.hasPrefix(even ? "blue " : "green ") { effects.append("round \(round) default: \(fallback)") }
            let added = curl(sandbox, host: "app.example.com", port: even ? extraA : extraB).output
            if added != "\(even ? "blue" : "green")  app.example.com\n" { effects.append("round \(round) added listener: \(added)") }
            if (try? RawClient(host: "127.0.0.1", port: even ? extraB : extraA)) != nil { effects.append("round \(round): removed listener still accepts") }
        }
        stop.set()
        #expect(Poll.until(timeout: 30) { churn.isFinished })

        for (process, output) in downloads {
            #expect(process.waitForExit(timeout: 60))
            #expect(process.exitStatus == 0, "\(process.output)")
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            #expect(size == 41_943_040, "a long transfer was cut at \(size) bytes")
        }
        let (successes, failures) = tally.result
        #expect(failures.isEmpty, "failed new connections: \(failures.prefix(5))")
        #expect(successes >= 20, "only \(successes) connections made it during the reloads")
        #expect(effects.isEmpty, "\(effects.prefix(5))")
        #expect(tailgate.process.output.contains("reloaded generation=51"))
        #expect(!tailgate.process.output.contains("outcome=drain_timeout"))
    }
}
