import Foundation
import TailgateTestSupport
import Testing

/// Let's Encrypt-style issuance through the edge, with real parts. The lab's host is the cloud VM (tailgate:
/// an http listener on 80 that redirects to https but lets ACME challenges through, a tls listener on 443
/// routing by SNI), its tailnet peer is the home host (nginx, and the ACME clients certbot and lego), and
/// its outsider is the internet (pebble, Let's Encrypt's test server, which validates by connecting to the
/// cloud VM's public address, and a visitor).
@Suite(.serialized, .enabled(if: NetworkLab.available || NetworkLab.requiredButMissing, "needs root, iproute2 and nft (CI runs it as root)"))
struct ACMEThroughTheEdgeTests {
    @Test func certbotGetsACertificateByHTTP01ThroughTheRedirectingPortAndTheHomeNginxServesItThroughTheEdge() throws {
        guard ACMEEdge.canRun() else { return }
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("acme-certbot")
        defer { sandbox.tearDown() }
        let edge = try ACMEEdge.start(lab, sandbox)
        let name = ACMEEdge.webName, cloud = NetworkLab.hostOutside4
        let webroot = sandbox.path("webroot")
        try FileManager.default.createDirectory(atPath: "\(webroot)/.well-known/acme-challenge", withIntermediateDirectories: true)
        try "ready\n".write(toFile: "\(webroot)/.well-known/acme-challenge/ready", atomically: true, encoding: .utf8)
        let plainNginx = try edge.startHomeNginx("nginx-http", webroot: webroot, certificateDirectory: nil)

        let certbot = edge.run(in: lab.peer, "/usr/bin/env", [
            "REQUESTS_CA_BUNDLE=\(edge.apiAuthority)", Command.executable(named: "certbot") ?? "certbot", "certonly",
            "--server", edge.directoryURL, "--webroot", "-w", webroot, "--preferred-challenges", "http", "-d", name,
            "--config-dir", sandbox.path("certbot/config"), "--work-dir", sandbox.path("certbot/work"), "--logs-dir", sandbox.path("certbot/logs"),
            "--register-unsafely-without-email", "--agree-tos", "--non-interactive",
        ], timeout: 180)
        #expect(certbot.status == 0, "\(certbot.output)\n\(edge.pebble.output.suffix(3_000))\n\(edge.tailgate.process.output.suffix(2_000))")
        let live = sandbox.path("certbot/config/live/\(name)")
        #expect(FileManager.default.fileExists(atPath: "\(live)/fullchain.pem"), "\(certbot.output)")
        // pebble's validation came in on the cloud's port 80 and went to the home nginx, not to a redirect,
        // and nginx saw pebble's address in the PROXY header.
        let challenge = edge.tailgate.waitForConnectionLine(containing: [
            "listener=web", "client=\(NetworkLab.outsider4):", "sni=\(name)", "upstream=home_http", "server=\(NetworkLab.peer4):80", "outcome=closed",
        ])
        #expect(challenge != nil, "\(edge.tailgate.process.output.suffix(2_000))")
        let access = (try? String(contentsOfFile: sandbox.path("nginx-home-access.log"), encoding: .utf8)) ?? ""
        #expect(access.split(separator: "\n").contains { $0.hasPrefix("\(NetworkLab.outsider4) \"GET /.well-known/acme-challenge/") && $0.hasSuffix("\" 200") },
                "\(access)")
        // Anything else on port 80 is sent to https.
        let visit = edge.run(in: lab.outsider, "/usr/bin/curl", ["-s", "-i", "--max-time", "10", "--resolve", "\(name):80:\(cloud)", "http://\(name)/dashboard?tab=2"])
        #expect(visit.output.hasPrefix("HTTP/1.1 301 Moved Permanently\r\n") && visit.output.contains("Location: https://\(name)/dashboard?tab=2\r\n"),
                "\(visit.output)")

        // The home nginx takes the certificate on 443; a visitor trusting only pebble's root gets the page.
        #expect(plainNginx.stop() == 0)
        _ = try edge.startHomeNginx("nginx-https", webroot: webroot, certificateDirectory: live)
        let root = edge.run(in: lab.outsider, "/usr/bin/curl", ["-sS", "--max-time", "10", "--cacert", edge.apiAuthority,
                                                                "-o", sandbox.path("pebble-root.pem"), "https://\(NetworkLab.outsider4):15000/roots/0"])
        #expect(root.status == 0, "\(root.output)")
        var page: CommandResult?
        _ = Poll.until(timeout: 30, every: 0.2) {
            page = edge.run(in: lab.outsider, "/usr/bin/curl", ["-sS", "--max-time", "10", "--cacert", sandbox.path("pebble-root.pem"),
                                                                "--resolve", "\(name):443:\(cloud)", "https://\(name)/"])
            return page?.status == 0
        }
        #expect(page?.output == "home over https sni=\(name)\n", "\(page?.output ?? "")")
        // The certificate the edge passed through is the one pebble issued to certbot.
        let served = try edge.servedCertificate(name)
        let issued = try Command.check("/usr/bin/openssl", ["x509", "-in", "\(live)/cert.pem", "-noout", "-fingerprint", "-sha256"])
        #expect(served.contains(issued.trimmingCharacters(in: .whitespacesAndNewlines)), "\(served)\n\(issued)")
        #expect(served.contains("subject=CN = \(name)\n") && served.contains("DNS:\(name)") && served.contains("issuer=CN = Pebble Intermediate CA"),
                "\(served)")
        #expect(edge.tailgate.waitForConnectionLine(containing: ["listener=public", "sni=\(name)", "upstream=home_https", "outcome=closed"]) != nil,
                "\(edge.tailgate.process.output.suffix(2_000))")
    }

    @Test func legoGetsACertificateByTLSALPN01ThroughTheSNIRoute() throws {
        guard ACMEEdge.canRun() else { return }
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("acme-lego")
        defer { sandbox.tearDown() }
        let edge = try ACMEEdge.start(lab, sandbox)
        let name = ACMEEdge.alpnName

        // lego answers the challenge itself on the home host's 443, where the cloud's SNI route leads.
        let lego = edge.run(in: lab.peer, "/usr/bin/env", [
            "LEGO_CA_CERTIFICATES=\(edge.apiAuthority)", Command.executable(named: "lego") ?? "lego",
            "--server", edge.directoryURL, "--accept-tos", "--email", "acme@tailgate.test", "--domains", name,
            "--tls", "--tls.port", "\(NetworkLab.peer4):443", "--path", sandbox.path("lego"), "run",
        ], timeout: 180)
        #expect(lego.status == 0, "\(lego.output)\n\(edge.pebble.output.suffix(3_000))\n\(edge.tailgate.process.output.suffix(2_000))")
        let certificate = sandbox.path("lego/certificates/\(name).crt")
        #expect(FileManager.default.fileExists(atPath: certificate), "\(lego.output)")
        let text = Command.run("/usr/bin/openssl", ["x509", "-in", certificate, "-noout", "-issuer", "-ext", "subjectAltName"]).output
        #expect(text.contains("issuer=CN = Pebble Intermediate CA") && text.contains("DNS:\(name)"), "\(text)")
        // The validation's ClientHello (ALPN acme-tls/1) crossed the tls listener to the home host.
        let validation = edge.tailgate.waitForConnectionLine(containing: [
            "listener=public", "client=\(NetworkLab.outsider4):", "sni=\(name)", "alpn=acme-tls/1", "upstream=home_https", "server=\(NetworkLab.peer4):443",
        ])
        #expect(validation != nil, "\(edge.tailgate.process.output.suffix(2_000))")
    }
}

/// What the ACME tests start in a `NetworkLab`: pebble on the internet (its ACME API on the outsider's
/// address, the test's names resolving to the cloud VM) and tailgate on the cloud VM.
private struct ACMEEdge {
    static let webName = "web.tailgate.test", alpnName = "alpn.tailgate.test"
    let lab: NetworkLab
    let sandbox: Sandbox
    let pebble: ChildProcess
    let tailgate: TailgateInstance

    var directoryURL: String { "https://\(NetworkLab.outsider4):14000/dir" }
    /// The sandbox authority's certificate: pebble's API certificate is issued by it, so the ACME clients verify the API.
    var apiAuthority: String { sandbox.path("ca.crt") }

    /// Whether the tests can run here; in CI a missing piece fails them instead.
    static func canRun() -> Bool {
        #expect(!NetworkLab.requiredButMissing, "CI must run the ACME tests as root")
        let missing = ["pebble", "certbot", "lego", "nginx", "curl", "openssl"].filter { Command.executable(named: $0) == nil }
        #expect(missing.isEmpty || ProcessInfo.processInfo.environment["CI"] == nil,
                "not installed: \(missing.joined(separator: ", ")); they are test dependencies (scripts/install-deps)")
        return NetworkLab.available && missing.isEmpty
    }

    static func start(_ lab: NetworkLab, _ sandbox: Sandbox) throws -> ACMEEdge {
        guard let pebbleBinary = Command.executable(named: "pebble") else { throw SandboxError.missingTool("pebble") }
        try sandbox.certificates.issue("pebble", dnsNames: ["pebble.test"], ipAddresses: [NetworkLab.outsider4])
        // Validation goes to the standard ports, as Let's Encrypt's does.
        try sandbox.write("pebble.json", """
            {"pebble": {"listenAddress": "\(NetworkLab.outsider4):14000", "managementListenAddress": "\(NetworkLab.outsider4):15000",
                        "certificate": "\(sandbox.path("pebble.crt"))", "privateKey": "\(sandbox.path("pebble.key"))",
                        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
            """)
        try sandbox.write("pebble-hosts", "127.0.0.1 localhost\n\(NetworkLab.hostOutside4) \(webName) \(alpnName)\n")
        // pebble resolves names with the system resolver: the hosts file is bind-mounted over /etc/hosts in
        // the private mount namespace `ip netns exec` makes (its mounts do not propagate back), so the
        // machine's own /etc/hosts stays as it is.
        let pebble = try sandbox.start("pebble", lab.ip, [
            "netns", "exec", lab.outsider, "/bin/sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$1\" -config \"$2\"",
            sandbox.path("pebble-hosts"), pebbleBinary, sandbox.path("pebble.json"),
        ], environment: ["PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"])
        _ = Poll.until(timeout: 60) { pebble.output.contains("ACME directory available at") || !pebble.isRunning }
        guard pebble.output.contains("ACME directory available at") else { throw SandboxError.timeout("pebble: \(pebble.output)") }

        let tailgate = try FirewallIntegrationTests.startTailgate(lab, sandbox, config: """
            [listeners.web]
            bind = ["0.0.0.0:80"]
            protocol = "http"
            [listeners.web.routes]
            "\(webName)" = { upstream = "home_http", redirect = "https" }
            "\(alpnName)" = { upstream = "home_http", redirect = "https" }

            [listeners.public]
            bind = ["0.0.0.0:443"]
            [listeners.public.routes]
            "\(webName)" = "home_https"
            "\(alpnName)" = "home_https"

            [upstreams.home_http]
            servers = ["\(NetworkLab.peer4):80"]
            send_proxy = "v1"
            [upstreams.home_https]
            servers = ["\(NetworkLab.peer4):443"]
            """)
        return ACMEEdge(lab: lab, sandbox: sandbox, pebble: pebble, tailgate: tailgate)
    }

    /// Runs a command to completion inside `namespace`.
    func run(in namespace: String, _ executable: String, _ arguments: [String], timeout: Double = 60) -> CommandResult {
        Command.run(lab.ip, ["netns", "exec", namespace, executable] + arguments, timeout: timeout)
    }

    /// The home nginx: the webroot on the tailnet address's port 80 (behind PROXY v1, logging the client's
    /// address), and with `certificateDirectory` (certbot's live/NAME) a page on 443.
    func startHomeNginx(_ name: String, webroot: String, certificateDirectory: String?) throws -> ChildProcess {
        guard let nginx = Command.executable(named: "nginx") else { throw SandboxError.missingTool("nginx") }
        let https = certificateDirectory.map { directory in
            """
                server {
                    listen \(NetworkLab.peer4):443 ssl;
                    ssl_certificate \(directory)/fullchain.pem;
                    ssl_certificate_key \(directory)/privkey.pem;
                    location / { default_type text/plain; return 200 "home over https sni=$ssl_server_name\\n"; }
                }
            """
        } ?? ""
        try sandbox.write("\(name).conf", try NginxUpstream.preamble(name, in: sandbox) + """
                log_format edge '$proxy_protocol_addr "$request" $status';
                server {
                    listen \(NetworkLab.peer4):80 proxy_protocol;
                    access_log \(sandbox.path("nginx-home-access.log")) edge;
                    root \(webroot);
                    location /.well-known/acme-challenge/ { default_type text/plain; }
                    location / { return 404; }
                }
            \(https)
            }
            """)
        let process = try sandbox.start(name, lab.ip, ["netns", "exec", lab.peer, nginx, "-p", sandbox.directory, "-c", sandbox.path("\(name).conf")])
        let ready = Poll.until(timeout: 30, every: 0.1) {
            process.isRunning && run(in: lab.peer, "/usr/bin/curl", ["-s", "--max-time", "5", "--haproxy-protocol",
                                                "http://\(NetworkLab.peer4)/.well-known/acme-challenge/ready"]).output == "ready\n"
        }
        guard ready else { throw SandboxError.timeout("home nginx: \(process.output)") }
        return process
    }

    /// The subject, issuer, names and SHA-256 fingerprint of the certificate a client on the internet is
    /// shown for `name` on the cloud VM's port 443.
    func servedCertificate(_ name: String) throws -> String {
        let hello = run(in: lab.outsider, "/usr/bin/openssl", ["s_client", "-connect", "\(NetworkLab.hostOutside4):443", "-servername", name])
        guard let begin = hello.output.range(of: "-----BEGIN CERTIFICATE-----"),
              let end = hello.output.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<hello.output.endIndex)
        else { throw TestFailure("no certificate from openssl s_client: \(hello.output)") }
        try sandbox.write("served.pem", String(hello.output[begin.lowerBound..<end.upperBound]) + "\n")
        return try Command.check("/usr/bin/openssl", ["x509", "-in", sandbox.path("served.pem"), "-noout", "-subject", "-issuer",
                                                      "-ext", "subjectAltName", "-fingerprint", "-sha256"])
    }
}
