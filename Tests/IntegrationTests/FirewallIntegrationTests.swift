import Foundation
import TailgateTestSupport
import Testing

/// Real nftables in namespaces the tests create: who reaches restricted ports, with tailgate applying the table.
@Suite(.serialized, .enabled(if: NetworkLab.available || NetworkLab.requiredButMissing, "needs root, iproute2 and nft (CI runs it as root)"))
struct FirewallIntegrationTests {
    static func firewallConfig(tcpPorts: [Int], interval: String = "1s") -> String {
        """
        [firewall]
        allow = ["100.64.0.0/10", "fd7a:115c:a1e0::/48"]
        tailnet_interfaces = ["tailscale0"]
        trusted_interfaces = ["lo"]
        tcp_ports = [\(tcpPorts.map(String.init).joined(separator: ", "))]
        check_interval = "\(interval)"
        """
    }

    /// Starts tailgate inside the lab's host namespace.
    static func startTailgate(_ lab: NetworkLab, _ sandbox: Sandbox, config: String) throws -> TailgateInstance {
        try sandbox.write("tailgate.toml", config)
        let process = try sandbox.start("tailgate", lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "run", "--config", sandbox.path("tailgate.toml")])
        guard process.waitForOutput(" ready ", timeout: 30) else { throw SandboxError.timeout("tailgate: \(process.output)") }
        return TailgateInstance(process: process, configPath: sandbox.path("tailgate.toml"))
    }

    @Test func onlyTheTailnetAndTheHostReachRestrictedPortsIncludingDockerPublishedOnes() throws {
        #expect(!NetworkLab.requiredButMissing, "CI must run the firewall tests as root")
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("fw-matrix")
        defer { sandbox.tearDown() }
        typealias L = NetworkLab
        // Before tailgate: the outsider reaches everything (so the blocks below are tailgate's doing).
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 5432))
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 15432))

        let tailgate = try Self.startTailgate(lab, sandbox, config: Self.firewallConfig(tcpPorts: [5432, 15432]))
        #expect(tailgate.process.output.contains("firewall applied"))

        // The tailnet peer, arriving on tailscale0, reaches the host port and the DNAT-published port, v4 and v6.
        #expect(lab.reaches(from: lab.peer, L.hostTailnet4, 5432))
        #expect(lab.reaches(from: lab.peer, L.hostTailnet4, 15432))
        #expect(lab.reaches(from: lab.peer, L.hostTailnet6, 5432))
        #expect(lab.reaches(from: lab.peer, L.hostTailnet6, 15432))
        // The host itself.
        #expect(lab.reaches(from: lab.host, "127.0.0.1", 5432))
        #expect(lab.reaches(from: lab.host, L.hostOutside4, 5432))
        #expect(lab.reaches(from: lab.host, "::1", 5432))
        // The outsider reaches neither, on any of the host's addresses, v4 or v6.
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 5432))
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 15432))
        #expect(!lab.reaches(from: lab.outsider, L.hostTailnet4, 5432))
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside6, 5432))
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside6, 15432))
        // A tailnet source arriving on another interface is not trusted.
        #expect(!lab.reaches(from: lab.spoofer, L.hostSpoof4, 5432))
        #expect(!lab.reaches(from: lab.spoofer, L.hostSpoof6, 5432))
        #expect(!lab.reaches(from: lab.spoofer, L.hostSpoof4, 15432))
        // An unlisted port stays open to everyone.
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 8080))
        #expect(lab.reaches(from: lab.outsider, L.hostOutside6, 8080))
        #expect(lab.reaches(from: lab.spoofer, L.hostSpoof4, 8080))

        // Stopping the agent leaves the rules in place (fail closed).
        #expect(tailgate.process.stop() == 0)
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 5432))
        #expect(lab.listTailgateTable().contains("table inet tailgate"))
        // `tailgate firewall flush` removes them.
        let flush = Command.run(lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "firewall", "flush", "--config", tailgate.configPath])
        #expect(flush.status == 0, "\(flush.output)")
        #expect(flush.output.contains("removed table inet tailgate"), "\(flush.output)")
        #expect(lab.listTailgateTable().isEmpty)
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 5432))
        // Again: nothing to remove, and it says so.
        let again = Command.run(lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "firewall", "flush", "--config", tailgate.configPath])
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("no table inet tailgate; nothing to remove"), "\(again.output)")
    }

    @Test func planIsWhatTheKernelHoldsAfterApply() throws {
        #expect(!NetworkLab.requiredButMissing)
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("fw-plan")
        defer { sandbox.tearDown() }
        try sandbox.write("fw.toml", Self.firewallConfig(tcpPorts: [5432, 6379, 9000, 9001]) + "\nudp_ports = [\"3000-3010\", 53]\n")
        let plan = Command.run(Sandbox.tailgateBinary, ["firewall", "plan", "--config", sandbox.path("fw.toml")])
        #expect(plan.status == 0, "\(plan.output)")
        // `enabled = false` means "never touch nftables", for the CLI too.
        try sandbox.write("off.toml", Self.firewallConfig(tcpPorts: [5432]) + "\nenabled = false\n")
        let refused = Command.run(lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "firewall", "apply", "--config", sandbox.path("off.toml")])
        #expect(refused.status == 1)
        #expect(refused.output.contains("enabled = false: not applying"), "\(refused.output)")
        #expect(lab.listTailgateTable().isEmpty)
        // `status` is a report: on standard output whatever it says, exit 0 when the kernel is as the file wants.
        func report(_ file: String) -> CommandResult {
            Command.run(lab.ip, ["netns", "exec", lab.host, "/bin/sh", "-c", "exec \"$0\" firewall status --config \"$1\" 2>/dev/null",
                                 Sandbox.tailgateBinary, sandbox.path(file)])
        }
        let off = report("off.toml")
        #expect(off.status == 0)
        #expect(off.output.contains("missing, as [firewall] enabled = false wants"), "\(off.output)")

        let apply = Command.run(lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "firewall", "apply", "--config", sandbox.path("fw.toml")])
        #expect(apply.status == 0, "\(apply.output)")
        #expect(lab.listTailgateTable() == plan.output)
        let status = Command.run(lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "firewall", "status", "--config", sandbox.path("fw.toml")])
        #expect(status.status == 0)
        #expect(status.output.contains("in sync"))
        _ = try lab.exec(lab.host, Command.executable(named: "nft") ?? "nft", ["add", "element", "inet", "tailgate", "tcp_ports", "{ 1234 }"])
        let drifted = report("fw.toml")
        #expect(drifted.status == 1)
        #expect(drifted.output.contains("present, but differs from"), "\(drifted.output)")
        #expect(drifted.output.contains("counters (since the table was last replaced)"))
        let leftOver = report("off.toml")
        #expect(leftOver.status == 1)
        #expect(leftOver.output.contains("present, left from before: [firewall] enabled = false"), "\(leftOver.output)")

        // An agent started with the firewall disabled leaves the table, and says that it is still there.
        let disabled = try Self.startTailgate(lab, sandbox, config: Self.firewallConfig(tcpPorts: [5432]) + "\nenabled = false\n")
        #expect(disabled.process.waitForOutput("table inet tailgate from before is still in place", timeout: 10), "\(disabled.process.output)")
        #expect(!lab.listTailgateTable().isEmpty)
    }

    @Test func withoutPrivilegesRunRefusesAndPlanStillWorks() throws {
        let sandbox = try Sandbox("fw-noprivs")
        defer { sandbox.tearDown() }
        try sandbox.write("fw.toml", Self.firewallConfig(tcpPorts: [5432]))
        chmod(sandbox.path("fw.toml"), 0o644)
        guard let setpriv = Command.executable(named: "setpriv"), getuid() == 0 else { return }
        let unprivileged = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
        let run = Command.run(unprivileged[0], Array(unprivileged.dropFirst()) + [Sandbox.tailgateBinary, "run", "--config", sandbox.path("fw.toml")], timeout: 20)
        #expect(run.status == 1)
        #expect(run.output.contains("CAP_NET_ADMIN"), "\(run.output)")
        #expect(run.output.contains("enabled = false"))
        let plan = Command.run(unprivileged[0], Array(unprivileged.dropFirst()) + [Sandbox.tailgateBinary, "firewall", "plan", "--config", sandbox.path("fw.toml")])
        #expect(plan.status == 0)
        #expect(plan.output.contains("table inet tailgate"))
    }

    @Test func establishedTailnetConnectionsSurviveReappliesAndDriftIsRepaired() throws {
        #expect(!NetworkLab.requiredButMissing)
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("fw-survive")
        defer { sandbox.tearDown() }
        typealias L = NetworkLab
        let tailgate = try Self.startTailgate(lab, sandbox, config: Self.firewallConfig(tcpPorts: [5432, 15432, 6000]))
        // A tailnet client holds a connection open, echoing every 50 ms for 6 s, through reloads and a CLI re-apply.
        let holder = try sandbox.start("holder", lab.ip, ["netns", "exec", lab.peer, "/usr/bin/python3",
                                                          "\(Sandbox.repositoryRoot)/Tests/Fixtures/lab_client.py", L.hostTailnet4, "5432", "2", "6"])
        let published = try sandbox.start("holder-dnat", lab.ip, ["netns", "exec", lab.peer, "/usr/bin/python3",
                                                                  "\(Sandbox.repositoryRoot)/Tests/Fixtures/lab_client.py", L.hostTailnet4, "15432", "2", "6"])
        usleep(500_000)
        for round in 0..<4 {
            #expect(try tailgate.reload(Self.firewallConfig(tcpPorts: round % 2 == 0 ? [5432, 15432, 7000] : [5432, 15432, 6000])))
            usleep(300_000)
        }
        let apply = Command.run(lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "firewall", "apply", "--config", tailgate.configPath])
        #expect(apply.status == 0, "\(apply.output)")
        #expect(holder.waitForExit(timeout: 15))
        #expect(holder.exitStatus == 0, "an established tailnet connection broke during re-applies")
        #expect(published.waitForExit(timeout: 15))
        #expect(published.exitStatus == 0, "an established connection to the published port broke")

        // Someone flushes the whole ruleset: the agent notices and restores its table within check_interval.
        // (Whether the table was gone in between is not asked: a check may land just after the flush.)
        _ = try lab.exec(lab.host, Command.executable(named: "nft") ?? "nft", ["flush", "ruleset"])
        #expect(Poll.until(timeout: 5) { !lab.listTailgateTable().isEmpty })
        #expect(tailgate.process.waitForOutput("firewall repaired"))
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 5432))
        // An edit to our table is repaired the same way.
        _ = try lab.exec(lab.host, Command.executable(named: "nft") ?? "nft", ["flush", "chain", "inet", "tailgate", "guard"])
        #expect(Poll.until(timeout: 5) { tailgate.process.output.components(separatedBy: "firewall repaired").count > 2 })
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 5432))
    }

    @Test func anOutsiderNeverGetsThroughDuringFiftyReloadsThatChangeThePortList() throws {
        #expect(!NetworkLab.requiredButMissing)
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("fw-probe")
        defer { sandbox.tearDown() }
        typealias L = NetworkLab
        let configA = Self.firewallConfig(tcpPorts: [5432, 6000, 15432], interval: "30s")
        let configB = Self.firewallConfig(tcpPorts: [5432, 7000, 15432], interval: "30s")
        let tailgate = try Self.startTailgate(lab, sandbox, config: configA)
        // The outsider probes the ports restricted in both configs, as fast as it can, until told to stop.
        try sandbox.write("probe.py", """
            import os, socket, sys, time
            hits = 0; tries = 0
            while not os.path.exists(sys.argv[1]):
                for address, port in (("\(L.hostOutside4)", 5432), ("\(L.hostOutside4)", 15432), ("\(L.hostOutside6)", 5432)):
                    family = socket.AF_INET6 if ":" in address else socket.AF_INET
                    with socket.socket(family) as s:
                        s.settimeout(0.2)
                        tries += 1
                        try:
                            s.connect((address, port)); hits += 1
                        except OSError:
                            pass
            print("tries", tries, "hits", hits, flush=True)
            """)
        let stopFile = sandbox.path("stop-probing")
        let probe = try sandbox.start("probe", lab.ip, ["netns", "exec", lab.outsider, "/usr/bin/python3", sandbox.path("probe.py"), stopFile])
        var effects: [String] = []
        for round in 1...50 {
            let useB = round % 2 == 1
            #expect(try tailgate.reload(useB ? configB : configA), "round \(round)")
            if round % 10 == 0 || round == 1 {
                // The change took effect: 6000 is open exactly when 7000 is restricted, and vice versa.
                let open6000 = lab.reaches(from: lab.outsider, L.hostOutside4, 6000, timeout: 0.5)
                let open7000 = lab.reaches(from: lab.outsider, L.hostOutside4, 7000, timeout: 0.5)
                if open6000 != useB || open7000 == useB { effects.append("round \(round): 6000 open \(open6000), 7000 open \(open7000)") }
            }
        }
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        #expect(probe.waitForExit(timeout: 10))
        let summary = probe.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.hasSuffix("hits 0"), "the outsider got through: \(summary)")
        #expect(summary.hasPrefix("tries ") && !summary.hasPrefix("tries 0 "))
        #expect(effects.isEmpty, "\(effects)")
    }

    @Test func readyzReportsAFirewallOutOfStepUntilItIsRepaired() throws {
        #expect(!NetworkLab.requiredButMissing)
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("fw-readyz")
        defer { sandbox.tearDown() }
        let healthPort = TestPort.free()
        let tailgate = try Self.startTailgate(lab, sandbox, config: Self.firewallConfig(tcpPorts: [5432], interval: "4s")
            + "\n[health]\nlisten = \"127.0.0.1:\(healthPort)\"\n")
        func readyz() -> String {
            Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "--max-time", "5", "-w", " %{http_code}",
                                 "http://127.0.0.1:\(healthPort)/readyz"]).output
        }
        #expect(Poll.until(timeout: 10) { readyz().hasSuffix(" 200") })
        // Dropped packets show up per port in /metrics.
        #expect(!lab.reaches(from: lab.outsider, NetworkLab.hostOutside4, 5432, timeout: 1))
        let metrics = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "http://127.0.0.1:\(healthPort)/metrics"]).output
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix("tailgate_firewall_dropped_packets_total{") && $0.contains("ports=\"5432\"") }
        #expect(dropped.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 1 } == true, "\(metrics)")
        #expect(metrics.contains("tailgate_firewall_in_sync 1"))
        let exposed = DashboardMetrics.exposed(metrics)
        let missing = try DashboardMetrics.referenced().filter { $0.hasPrefix("tailgate_firewall_") && !exposed.contains($0) }
        #expect(missing.isEmpty, "the dashboard or alerts use firewall metrics /metrics does not have: \(missing.sorted())")

        // A periodic check may repair the table between the flush and the request: up to three tries.
        var outOfStep = ""
        for _ in 0..<3 where !outOfStep.hasSuffix(" 503") {
            _ = try lab.exec(lab.host, Command.executable(named: "nft") ?? "nft", ["flush", "ruleset"])
            outOfStep = readyz()
        }
        #expect(outOfStep.hasSuffix(" 503"), "\(outOfStep)")
        #expect(outOfStep.contains("firewall out of step"))
        // Within check_interval the agent repairs the table and is ready again.
        #expect(Poll.until(timeout: 10) { readyz().hasSuffix(" 200") })
        #expect(tailgate.process.output.contains("firewall repaired"))
        // The status page shows the repair, and the drops per restricted port.
        let page = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "http://127.0.0.1:\(healthPort)/"]).output
        #expect(page.contains("<span class=\"st in_sync\">in sync</span>") && page.contains("repairs, the last at 20"), "\(page)")
        #expect(page.contains("<code>tcp 5432</code>") && page.contains("data-k=\"firewall/dropped/#0/packets\""), "\(page)")
    }
}
