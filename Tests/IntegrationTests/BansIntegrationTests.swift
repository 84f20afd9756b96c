import Foundation
import TailgateTestSupport
import Testing

/// `[bans]` with a real agent in the lab's host namespace: `tailgate ban` through the control socket puts a
/// source in the kernel's ban set, where its packets to the shielded listener port are dropped; who is never
/// banned is refused; bad requests get a clear answer; the bans outlive a reload and a restart; lifting one
/// lets the source back.
@Suite(.serialized, .enabled(if: NetworkLab.available || NetworkLab.requiredButMissing, "needs root, iproute2 and nft (CI runs it as root)"))
struct BansIntegrationTests {
    static func config(socket: String) -> String {
        """
        [bans]
        enabled = true
        control_socket = "\(socket)"
        never = ["198.18.0.200"]

        [listeners.edge]
        bind = ["0.0.0.0:8443"]
        protocol = "tcp"
        default = "lab"
        [listeners.edge_admin]
        bind = ["0.0.0.0:8444"]
        protocol = "tcp"
        default = "lab"
        allow = ["198.18.0.99"]

        [upstreams.lab]
        servers = ["127.0.0.1:8080"]
        """
    }

    /// The agent in the lab's host namespace; `name` keeps a restarted agent's output apart from the first's.
    static func start(_ lab: NetworkLab, _ sandbox: Sandbox, socket: String, name: String) throws -> TailgateInstance {
        try sandbox.write("tailgate.toml", config(socket: socket))
        let process = try sandbox.start(name, lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "run", "--config", sandbox.path("tailgate.toml")])
        guard process.waitForOutput(" ready ", timeout: 30) else { throw SandboxError.timeout("tailgate: \(process.output)") }
        return TailgateInstance(process: process, configPath: sandbox.path("tailgate.toml"))
    }

    static func ban(_ arguments: [String], socket: String) -> CommandResult {
        Command.run(Sandbox.tailgateBinary, ["ban"] + arguments + ["--socket", socket])
    }

    @Test func bansDropASourceInTheKernelAndOutliveReloadsAndRestarts() throws {
        #expect(!NetworkLab.requiredButMissing, "CI must run the ban tests as root")
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("bans")
        defer { sandbox.tearDown() }
        typealias L = NetworkLab
        let socket = sandbox.path("control.sock")
        var tailgate = try Self.start(lab, sandbox, socket: socket, name: "tailgate")
        #expect(tailgate.process.output.contains("control socket listening"))
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 8443), "nobody is banned yet")

        let added = Self.ban(["add", L.outsider4, "--for", "1h", "--reason", "test: scanner"], socket: socket)
        #expect(added.status == 0 && added.output.contains("ok: banned 198.18.0.2 for 1h"), "\(added.output)")
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 8443), "dropped in the kernel")
        #expect(lab.reaches(from: lab.peer, L.hostTailnet4, 8443), "others still reach the listener")
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 8080), "a port that is not shielded is not affected")
        let listed = Self.ban(["list"], socket: socket)
        #expect(listed.status == 0 && listed.output.contains("198.18.0.2\t") && listed.output.contains("\t1h\ttest: scanner\n"), "\(listed.output)")
        #expect(tailgate.process.output.contains("ban added"))
        // Banning it again gives it again: the new duration and reason replace the old.
        let rebanned = Self.ban(["add", L.outsider4, "--for", "2h", "--reason", "test: again"], socket: socket)
        #expect(rebanned.status == 0 && Self.ban(["list"], socket: socket).output.contains("\t2h\ttest: again\n"), "\(rebanned.output)")
        #expect(Self.ban(["add", L.outsider4, "--for", "1h", "--reason", "test: scanner"], socket: socket).status == 0)

        // Never banned: loopback, the tailnet, an address an allow list admits, [bans] never. Bad requests.
        for (target, expected) in [
            ("100.64.0.2", "is never banned"), ("127.0.0.1", "is never banned"), ("198.18.0.99", "is never banned"),
            ("198.18.0.200", "is never banned"), ("198.18.0.0/24", "is never banned"), ("10.0.0.0/8", "wider than a /16"),
            ("not-an-address", "is not a valid address or prefix"), ("198.18.0.3/33", "invalid prefix length"),
        ] {
            let refused = Self.ban(["add", target], socket: socket)
            #expect(refused.status == 1 && refused.output.contains(expected), "\(target): \(refused.output)")
        }
        let garbage = Command.run("/usr/bin/python3", ["-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(bytes(range(11, 200)) * 10); s.shutdown(socket.SHUT_WR)
            print(s.recv(4096).decode(errors='replace'))
            """, socket])
        #expect(garbage.output.contains("error: expected one request line"), "\(garbage.output)")

        // A reload and a restart keep the ban (it lives in the kernel; a new agent adopts it).
        #expect(try tailgate.reload(Self.config(socket: socket)))
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 8443))
        #expect(tailgate.process.stop() == 0)
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 8443), "stopped: the ban stays (fail closed)")
        tailgate = try Self.start(lab, sandbox, socket: socket, name: "tailgate-again")
        #expect(tailgate.process.output.contains("bans_kept=1"), "\(tailgate.process.output.suffix(2_000))")
        #expect(Self.ban(["list"], socket: socket).output.contains("198.18.0.2\t"), "\(tailgate.process.output.suffix(3_000))")
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 8443))

        // Lifted: back in. Lifting it again says it is not banned.
        let lifted = Self.ban(["remove", L.outsider4], socket: socket)
        #expect(lifted.status == 0 && lifted.output.contains("ok: lifted the ban of 198.18.0.2"), "\(lifted.output)")
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 8443))
        let again = Self.ban(["remove", L.outsider4], socket: socket)
        #expect(again.status == 1 && again.output.contains("is not banned"), "\(again.output)")
        #expect(tailgate.process.isRunning)
    }
}

extension BansIntegrationTests {
    /// fail2ban (the Debian package's server, in the foreground) with the shipped action file: two failures
    /// in a watched log ban the source in tailgate's kernel set; fail2ban's unban lifts it.
    @Test func fail2bansActionBansInTheKernelSet() throws {
        guard let server = Command.executable(named: "fail2ban-server"), let client = Command.executable(named: "fail2ban-client") else {
            Issue.record("fail2ban is not installed (scripts/install-deps installs it)")
            return
        }
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("bans-fail2ban")
        defer { sandbox.tearDown() }
        typealias L = NetworkLab
        let socket = sandbox.path("control.sock")
        let tailgate = try Self.start(lab, sandbox, socket: socket, name: "tailgate")
        defer { _ = tailgate.process.stop() }
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 8443))

        let conf = sandbox.path("fail2ban")
        for directory in ["action.d", "filter.d"] {
            try FileManager.default.createDirectory(atPath: "\(conf)/\(directory)", withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: "\(Sandbox.repositoryRoot)/packaging/fail2ban/tailgate.conf", toPath: "\(conf)/action.d/tailgate.conf")
        try "[Definition]\nfailregex = ^Failed login from <HOST>$\n".write(toFile: "\(conf)/filter.d/lab.conf", atomically: true, encoding: .utf8)
        try "[Definition]\nloglevel = INFO\nlogtarget = STDOUT\ndbfile = :memory:\n".write(toFile: "\(conf)/fail2ban.conf", atomically: true, encoding: .utf8)
        let log = sandbox.path("auth.log")
        try "".write(toFile: log, atomically: true, encoding: .utf8)
        try """
            [lab]
            enabled = true
            filter = lab
            logpath = \(log)
            backend = polling
            datepattern = {NONE}
            maxretry = 2
            findtime = 600
            bantime = 600
            action = tailgate[tailgate="\(Sandbox.tailgateBinary)", socket="\(socket)"]
            """.write(toFile: "\(conf)/jail.conf", atomically: true, encoding: .utf8)
        let f2bSocket = sandbox.path("f2b.sock")
        let f2b = try sandbox.start("fail2ban", server, ["-f", "-x", "-c", conf, "-s", f2bSocket, "-p", sandbox.path("f2b.pid")])
        defer { _ = f2b.stop() }
        #expect(Poll.until(timeout: 20) { Command.run(client, ["-s", f2bSocket, "status", "lab"]).status == 0 }, "\(f2b.output)")

        let handle = try #require(FileHandle(forWritingAtPath: log))
        handle.seekToEndOfFile()
        handle.write(Data("Failed login from \(L.outsider4)\nFailed login from \(L.outsider4)\n".utf8))
        try handle.close()
        #expect(Poll.until(timeout: 20) { Self.ban(["list"], socket: socket).output.contains("\(L.outsider4)\t") }, "\(f2b.output.suffix(3_000))")
        #expect(Self.ban(["list"], socket: socket).output.contains("\t10m\tfail2ban: lab\n"))
        #expect(!lab.reaches(from: lab.outsider, L.hostOutside4, 8443), "banned by fail2ban, dropped by the kernel")

        #expect(Command.run(client, ["-s", f2bSocket, "set", "lab", "unbanip", L.outsider4]).status == 0)
        #expect(Poll.until(timeout: 20) { !Self.ban(["list"], socket: socket).output.contains("\(L.outsider4)\t") }, "\(f2b.output)")
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 8443))
    }
}

extension BansIntegrationTests {
    /// Whether a TCP handshake with `address`:`port` from `namespace` completes within two seconds.
    static func handshakes(_ lab: NetworkLab, from namespace: String, _ address: String, _ port: Int) -> Bool {
        Command.run(lab.ip, ["netns", "exec", namespace, "/usr/bin/python3", "-c", """
            import socket, sys
            s = socket.socket(); s.settimeout(2)
            try:
                s.connect((sys.argv[1], int(sys.argv[2]))); print("yes")
            except OSError:
                print("no")
            """, address, "\(port)"], timeout: 20).output == "yes\n"
    }

    /// What `client` reads from `address`:`port` in `namespace` after sending `bytes` (empty when closed).
    static func exchange(_ lab: NetworkLab, from namespace: String, _ address: String, _ port: Int, sending text: String) -> String {
        Command.run(lab.ip, ["netns", "exec", namespace, "/usr/bin/python3", "-c", """
            import socket, sys
            family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
            s = socket.socket(family); s.settimeout(3); s.connect((sys.argv[1], int(sys.argv[2])))
            s.sendall(sys.argv[3].encode())
            try:
                print(s.recv(100).decode(errors="replace"), end="")
            except OSError:
                pass
            """, address, "\(port)", text], timeout: 20).output
    }

    /// A listener's `ban` rule: three not-TLS connections ban the source in the kernel. Behind a trusted hop the
    /// kernel only sees the hop, so a banned client named by a PROXY header is refused after it.
    @Test func aBanRuleBansOffendersAndBannedClientsBehindAHopAreRefused() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("bans-rule")
        defer { sandbox.tearDown() }
        typealias L = NetworkLab
        let socket = sandbox.path("control.sock")
        try sandbox.write("tailgate.toml", """
            [bans]
            enabled = true
            control_socket = "\(socket)"

            [listeners.edge]
            bind = ["0.0.0.0:8443"]
            default = "lab"
            ban = { after = 3, within = "1m", for = "1h", on = ["not_tls"] }
            [listeners.hop]
            bind = ["0.0.0.0:8445", "[::]:8445"]
            protocol = "tcp"
            default = "lab"
            proxy_protocol_from = ["\(L.outsider6)/128"]

            [upstreams.lab]
            servers = ["127.0.0.1:8080"]
            """)
        let process = try sandbox.start("tailgate", lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "run", "--config", sandbox.path("tailgate.toml")])
        #expect(process.waitForOutput(" ready ", timeout: 30))
        defer { _ = process.stop() }

        #expect(Self.handshakes(lab, from: lab.outsider, L.hostOutside4, 8443))
        for _ in 0..<3 { _ = Self.exchange(lab, from: lab.outsider, L.hostOutside4, 8443, sending: "GET / HTTP/1.0\r\n\r\n") }
        #expect(Poll.until(timeout: 15) { Self.ban(["list"], socket: socket).output.contains("\(L.outsider4)\t") }, "\(process.output.suffix(2_000))")
        #expect(Self.ban(["list"], socket: socket).output.contains("\t1h\ttailgate: listener edge: not_tls x3\n"))
        #expect(!Self.handshakes(lab, from: lab.outsider, L.hostOutside4, 8443), "banned by the rule, dropped by the kernel")

        // Behind the hop: a client its PROXY header names, banned, is refused; another passes.
        let header = { (client: String) in "PROXY TCP4 \(client) \(L.hostOutside4) 40000 8445\r\n" }
        #expect(Self.exchange(lab, from: lab.outsider, L.hostOutside6, 8445, sending: header("203.0.113.9")) == "ok\n")
        #expect(Self.ban(["add", "203.0.113.9", "--for", "10m"], socket: socket).status == 0)
        #expect(Poll.until(timeout: 10) { Self.exchange(lab, from: lab.outsider, L.hostOutside6, 8445, sending: header("203.0.113.9")).isEmpty })
        #expect(Self.exchange(lab, from: lab.outsider, L.hostOutside6, 8445, sending: header("203.0.113.10")) == "ok\n")
        #expect(process.isRunning)
    }
}

extension BansIntegrationTests {
    /// tailgate as a CrowdSec bouncer against a real Local API (the Debian package's `crowdsec -no-cs`, with
    /// its own database in the sandbox): `cscli decisions add` drops the source within the pull interval,
    /// ranges included; `cscli decisions delete` lifts it.
    @Test func crowdsecDecisionsBecomeKernelBansAndDeletingThemLiftsThem() throws {
        guard let crowdsec = Command.executable(named: "crowdsec"), let cscli = Command.executable(named: "cscli") else {
            Issue.record("crowdsec is not installed (scripts/install-deps installs it)")
            return
        }
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("bans-crowdsec")
        defer { sandbox.tearDown() }
        typealias L = NetworkLab
        let directory = sandbox.path("crowdsec"), lapiPort = TestPort.free()
        for sub in ["data", "notifications"] {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(sub)", withIntermediateDirectories: true)
        }
        try "".write(toFile: "\(directory)/acquis.yaml", atomically: true, encoding: .utf8)
        let config = "\(directory)/config.yaml"
        try """
            common: {daemonize: false, log_media: stdout, log_level: info, working_dir: .}
            config_paths:
              config_dir: \(directory)/
              data_dir: \(directory)/data/
              simulation_path: /etc/crowdsec/simulation.yaml
              hub_dir: /var/lib/crowdsec/hub/
              index_path: /var/lib/crowdsec/hub/.index.json
              notification_dir: \(directory)/notifications/
              plugin_dir: /usr/lib/crowdsec/plugins/
            crowdsec_service: {acquisition_path: \(directory)/acquis.yaml}
            db_config: {log_level: info, type: sqlite, db_path: \(directory)/data/crowdsec.db}
            api:
              client: {credentials_path: \(directory)/local_api_credentials.yaml}
              server: {log_level: info, listen_uri: "127.0.0.1:\(lapiPort)", profiles_path: /etc/crowdsec/profiles.yaml, trusted_ips: [127.0.0.1]}
            prometheus: {enabled: false}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        // The Local API and cscli run in the lab's host namespace, where the agent is (its loopback is that namespace's).
        func cs(_ arguments: [String]) -> CommandResult { Command.run(lab.ip, ["netns", "exec", lab.host, cscli, "-c", config] + arguments) }
        let machine = cs(["machines", "add", "tailgate-test", "--auto", "-f", "\(directory)/local_api_credentials.yaml"])
        #expect(machine.status == 0, "\(machine.output)")
        let key = "tg" + String(UInt64.random(in: 1...UInt64.max), radix: 36)
        #expect(cs(["bouncers", "add", "tailgate", "-k", key]).status == 0)
        try (key + "\n").write(toFile: sandbox.path("crowdsec.key"), atomically: true, encoding: .utf8)
        let lapi = try sandbox.start("crowdsec", lab.ip, ["netns", "exec", lab.host, crowdsec, "-c", config, "-no-cs"])
        defer { _ = lapi.stop() }
        #expect(lapi.waitForOutput("Local API listening", timeout: 30), "\(lapi.output)")

        let socket = sandbox.path("control.sock")
        let health = TestPort.free()
        try sandbox.write("tailgate.toml", Self.config(socket: socket) + """

            [health]
            listen = "127.0.0.1:\(health)"

            [bans.crowdsec]
            url = "http://127.0.0.1:\(lapiPort)"
            api_key_file = "\(sandbox.path("crowdsec.key"))"
            pull_interval = "1s"
            """)
        let process = try sandbox.start("tailgate", lab.ip, ["netns", "exec", lab.host, Sandbox.tailgateBinary, "run", "--config", sandbox.path("tailgate.toml")])
        #expect(process.waitForOutput(" ready ", timeout: 30))
        defer { _ = process.stop() }
        #expect(process.waitForOutput("crowdsec: decisions pulled"), "\(process.output.suffix(2_000))")
        #expect(lab.reaches(from: lab.outsider, L.hostOutside4, 8443))

        #expect(cs(["decisions", "add", "--ip", L.outsider4, "--duration", "1h", "--reason", "tailgate-test"]).status == 0)
        #expect(Poll.until(timeout: 15) { !lab.reaches(from: lab.outsider, L.hostOutside4, 8443, timeout: 1) }, "\(process.output.suffix(2_000))")
        #expect(Self.ban(["list"], socket: socket).output.contains("\tcrowdsec: tailgate-test\n"))
        #expect(cs(["decisions", "add", "--range", "203.0.113.0/24", "--duration", "2h"]).status == 0)
        #expect(Poll.until(timeout: 15) { Self.ban(["list"], socket: socket).output.contains("203.0.113.0/24\t") })

        let metrics = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "http://127.0.0.1:\(health)/metrics"]).output
        for line in ["tailgate_crowdsec_up 1.0", "tailgate_crowdsec_bans_added_total 2", "tailgate_bans_active 2.0"] {
            #expect(metrics.contains(line + "\n"), "\(line): \(metrics.split(separator: "\n").filter { $0.contains("ban") || $0.contains("crowdsec") })")
        }
        let status = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "http://127.0.0.1:\(health)/status"]).output
        #expect(status.contains("\"bans\":{\"enabled\":true,\"active\":2,") && status.contains("\"crowdsec\":{\"last_result\":\"ok\""), "\(status)")
        let page = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "http://127.0.0.1:\(health)/"]).output
        #expect(page.contains("<span data-k=\"bans/active\">2</span> sources banned in the kernel") && page.contains("CrowdSec: <span class=\"good\">ok</span>"), "\(page)")
        #expect(cs(["decisions", "delete", "--ip", L.outsider4]).status == 0)
        #expect(Poll.until(timeout: 15) { lab.reaches(from: lab.outsider, L.hostOutside4, 8443, timeout: 1) }, "\(process.output.suffix(2_000))")
        #expect(process.output.contains("bans_lifted=1"), "\(process.output.suffix(2_000))")
        #expect(process.isRunning)
    }
}
