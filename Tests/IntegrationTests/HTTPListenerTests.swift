import Foundation
import TailgateTestSupport
import Testing

/// `protocol = "http"` listeners: routing by Host, redirects to https that let ACME HTTP-01 challenges through
/// to the upstream, the client's address passed on in a PROXY header, and every kind of bad request head
/// answered with its status and a reason in the log while the agent serves on.
@Suite(.serialized)
struct HTTPListenerTests {
    /// A plain-HTTP nginx: `/.well-known/acme-challenge/` files from a webroot; everything else answers with
    /// the server's name, the Host it saw and, on its PROXY port, the client address from the header.
    struct PlainNginx {
        let port: Int
        let proxyPort: Int
        let webroot: String

        static func start(_ name: String, in sandbox: Sandbox) throws -> PlainNginx {
            guard let nginx = Command.executable(named: "nginx") else { throw SandboxError.missingTool("nginx") }
            let port = TestPort.free(), proxyPort = TestPort.free()
            let webroot = sandbox.path("webroot-\(name)")
            try FileManager.default.createDirectory(atPath: "\(webroot)/.well-known/acme-challenge", withIntermediateDirectories: true)
            try sandbox.write("nginx-\(name).conf", try NginxUpstream.preamble(name, in: sandbox) + """
                    server {
                        listen 127.0.0.1:\(port);
                        listen 127.0.0.1:\(proxyPort) proxy_protocol;
                        root \(webroot);
                        location /.well-known/acme-challenge/ { default_type text/plain; }
                        location / {
                            default_type text/plain;
                            return 200 "\(name) host=$host client=$proxy_protocol_addr uri=$request_uri\\n";
                        }
                    }
                }
                """)
            let process = try sandbox.start("nginx-\(name)", nginx, ["-p", sandbox.directory, "-c", sandbox.path("nginx-\(name).conf")])
            guard TestPort.waitUntilAccepting(port), TestPort.waitUntilAccepting(proxyPort) else {
                throw SandboxError.timeout("nginx \(name): \(process.output)")
            }
            return PlainNginx(port: port, proxyPort: proxyPort, webroot: webroot)
        }
    }

    /// curl's status line, headers and body for `url` sent to 127.0.0.1:`port` with `Host: host`.
    static func curl(_ port: Int, host: String, path: String, method: String = "GET", source: String? = nil) -> String {
        var arguments = ["-s", "-i", "--max-time", "10", "-X", method, "-H", "Host: \(host)"]
        if let source { arguments += ["--interface", source] }
        return Command.run("/usr/bin/curl", arguments + ["http://127.0.0.1:\(port)\(path)"]).output
    }

    /// An http listener whose every request goes to the plain nginx "home"; `extra` adds listener keys.
    static func startWebListener(in sandbox: Sandbox, extra: String = "") throws -> (port: Int, tailgate: TailgateInstance) {
        let home = try PlainNginx.start("home", in: sandbox)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.web]
            bind = ["127.0.0.1:\(port)"]
            protocol = "http"
            default = "home"
            \(extra)
            [upstreams.home]
            servers = ["127.0.0.1:\(home.port)"]
            """, in: sandbox)
        return (port, tailgate)
    }

    @Test func hostsRouteRedirectToHTTPSAndLetACMEChallengesThrough() throws {
        let sandbox = try Sandbox("http-routes")
        defer { sandbox.tearDown() }
        let home = try PlainNginx.start("home", in: sandbox), other = try PlainNginx.start("other", in: sandbox)
        try "token-for-pebble\n".write(toFile: "\(home.webroot)/.well-known/acme-challenge/abc123", atomically: true, encoding: .utf8)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [lists]
            office = ["127.0.0.61"]

            [listeners.web]
            bind = ["127.0.0.1:\(port)"]
            protocol = "http"
            default = "other"
            [listeners.web.routes]
            "app.example.com" = { upstream = "home", redirect = "https" }
            "*.home.example.com" = "home_proxy"
            "admin.example.com" = { upstream = "home", allow = ["@office"] }

            [upstreams.home]
            servers = ["127.0.0.1:\(home.port)"]
            [upstreams.home_proxy]
            servers = ["127.0.0.1:\(home.proxyPort)"]
            send_proxy = "v1"
            [upstreams.other]
            servers = ["127.0.0.1:\(other.port)"]
            """, in: sandbox)

        // A redirecting host: 301 for GET with path and query, 308 for POST, Connection: close.
        let get = Self.curl(port, host: "App.Example.COM.:80", path: "/a/b?x=1&y=%20")
        #expect(get.hasPrefix("HTTP/1.1 301 Moved Permanently\r\n"), "\(get)")
        #expect(get.contains("Location: https://app.example.com/a/b?x=1&y=%20\r\n") && get.contains("Connection: close\r\n"), "\(get)")
        let post = Self.curl(port, host: "app.example.com", path: "/form", method: "POST")
        #expect(post.hasPrefix("HTTP/1.1 308 Permanent Redirect\r\n") && post.contains("Location: https://app.example.com/form\r\n"), "\(post)")
        // The ACME challenge on that host reaches the upstream's webroot.
        let challenge = Self.curl(port, host: "app.example.com", path: "/.well-known/acme-challenge/abc123")
        #expect(challenge.hasPrefix("HTTP/1.1 200") && challenge.hasSuffix("token-for-pebble\n"), "\(challenge)")
        // A wildcard route with PROXY v1 out: the upstream sees the client's own address; the Host is untouched.
        let proxied = Self.curl(port, host: "grafana.home.example.com", path: "/d/1", source: "127.0.0.62")
        #expect(proxied.hasSuffix("home host=grafana.home.example.com client=127.0.0.62 uri=/d/1\n"), "\(proxied)")
        // No route: the default; a route with an allow list: 403 for others.
        #expect(Self.curl(port, host: "unknown.example.org", path: "/").hasSuffix("other host=unknown.example.org client= uri=/\n"))
        #expect(Self.curl(port, host: "admin.example.com", path: "/", source: "127.0.0.61").hasPrefix("HTTP/1.1 200"))
        let refused = Self.curl(port, host: "admin.example.com", path: "/", source: "127.0.0.63")
        #expect(refused.hasPrefix("HTTP/1.1 403 Forbidden\r\n"), "\(refused)")
        #expect(tailgate.waitForConnectionLine(containing: ["sni=app.example.com", "outcome=redirected", "reason=\"301 https://app.example.com/a/b?x=1&y=%20\""]) != nil,
                "\(tailgate.process.output.suffix(2_000))")
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.63:", "sni=admin.example.com", "outcome=denied"]) != nil)
    }

    /// Behind a trusted PROXY hop (the home host behind the cloud VM): the header's client is the one passed
    /// on, and the one an access list judges; a header from an untrusted peer is not HTTP and is refused.
    @Test func aTrustedHopsClientIsPassedOnAndJudged() throws {
        let sandbox = try Sandbox("http-hop")
        defer { sandbox.tearDown() }
        let home = try PlainNginx.start("home", in: sandbox)
        let port = TestPort.free()
        let tailgate = try TailgateInstance.start(config: """
            [listeners.from_cloud]
            bind = ["127.0.0.1:\(port)"]
            protocol = "http"
            proxy_protocol_from = ["127.0.0.90"]
            default = "home"
            [listeners.from_cloud.routes]
            "admin.example.com" = { upstream = "home", allow = ["198.51.100.0/24"] }
            [upstreams.home]
            servers = ["127.0.0.1:\(home.proxyPort)"]
            send_proxy = "v1"
            """, in: sandbox)
        func ask(_ header: String, host: String, from source: String) throws -> String {
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            defer { client.close() }
            _ = client.send(header + "GET /x HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            return String(decoding: client.receive(atLeast: Int.max, timeout: 10), as: UTF8.self)
        }
        let passed = try ask("PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n", host: "admin.example.com", from: "127.0.0.90")
        #expect(passed.hasSuffix("home host=admin.example.com client=198.51.100.7 uri=/x\n"), "\(passed)")
        let refused = try ask("PROXY TCP4 203.0.113.9 127.0.0.1 40001 80\r\n", host: "admin.example.com", from: "127.0.0.90")
        #expect(refused.hasPrefix("HTTP/1.1 403 Forbidden\r\n"), "\(refused)")
        let other = try ask("PROXY TCP4 203.0.113.9 127.0.0.1 40002 80\r\n", host: "www.example.com", from: "127.0.0.90")
        #expect(other.hasSuffix("client=203.0.113.9 uri=/x\n"), "\(other)")
        // Not from the trusted hop: a PROXY line is not an HTTP request line.
        let spoofed = try ask("PROXY TCP4 198.51.100.7 127.0.0.1 40003 80\r\n", host: "admin.example.com", from: "127.0.0.91")
        #expect(spoofed.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(spoofed)")
        #expect(tailgate.waitForConnectionLine(containing: ["client=203.0.113.9:40001", "peer=127.0.0.90:", "outcome=denied"]) != nil)
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.91:", "outcome=bad_request", "reason=malformed_request"]) != nil)
    }

    /// Each bad head: its status, `Connection: close`, a reason in the log; the agent answers the next.
    @Test func badRequestHeadsAreAnsweredWithTheirStatusAndTheAgentServesOn() throws {
        let sandbox = try Sandbox("http-hostile")
        defer { sandbox.tearDown() }
        let (port, tailgate) = try Self.startWebListener(in: sandbox, extra: "request_timeout = \"2s\"")
        let hello = try Captures.load("openssl-sni-alpn.bin")
        let cases: [(name: String, bytes: [UInt8], status: String, reason: String)] = [
            ("no Host", Array("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n".utf8), "400", "missing_host"),
            ("two Hosts", Array("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n".utf8), "400", "duplicate_host"),
            ("64 KiB of headers", Array(("GET / HTTP/1.1\r\nHost: a.example\r\n" + String(repeating: "X-Filler: \(String(repeating: "y", count: 100))\r\n", count: 640)).utf8), "431", "request_head_too_large"),
            ("binary garbage", (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }, "400", "malformed_request"),
            ("HTTP/0.9", Array("GET /index.html\r\n".utf8), "400", "http_0_9"),
            ("a TLS ClientHello", hello, "400", "tls_on_plain_http"),
            ("a bad Host", Array("GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n".utf8), "400", "bad_host"),
        ]
        for (index, item) in cases.enumerated() {
            let source = "127.0.0.\(70 + index)"
            let client = try RawClient(host: "127.0.0.1", port: port, source: source)
            _ = client.send(item.bytes)
            let answer = String(decoding: client.receive(atLeast: Int.max, timeout: 10), as: UTF8.self)
            client.close()
            #expect(answer.hasPrefix("HTTP/1.1 \(item.status) ") && answer.contains("Connection: close\r\n"), "\(item.name): \(answer.debugDescription)")
            #expect(tailgate.waitForConnectionLine(containing: ["client=\(source):", "outcome=bad_request", "reason=\(item.reason)"]) != nil,
                    "\(item.name): \(tailgate.process.output.suffix(1_500))")
        }
        // One byte a second: 408 after request_timeout.
        let slow = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.90")
        var answer = ""
        for byte in Array("GET / HTTP/1.1\r\nHost: a.example\r\n".utf8) {
            _ = slow.send([byte])
            let got = slow.receive(atLeast: 1, timeout: 1)
            if !got.isEmpty {
                answer = String(decoding: got + slow.receive(atLeast: Int.max, timeout: 5), as: UTF8.self)
                break
            }
        }
        slow.close()
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "\(answer.debugDescription)")
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.90:", "outcome=request_timeout", "reason=waiting_for_request_head"]) != nil)
        // Still serving.
        #expect(Self.curl(port, host: "a.example", path: "/ok").hasSuffix("home host=a.example client= uri=/ok\n"))
        #expect(tailgate.process.isRunning)
    }

    /// Once the server has answered and closed, the connection ends at once, as nginx's and HAProxy's do:
    /// it does not wait for the client's own FIN (no wake-up and no socket held for it). The response arrives
    /// whole and ends in a FIN, not a reset; a tls or tcp listener still passes half-closes on.
    @Test func aConnectionEndsOnceTheServerHasAnsweredAndClosed() throws {
        let sandbox = try Sandbox("http-close")
        defer { sandbox.tearDown() }
        let (port, tailgate) = try Self.startWebListener(in: sandbox)
        let client = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.95")
        defer { client.close() }
        _ = client.send("GET /once HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
        let answer = String(decoding: client.receive(atLeast: Int.max, timeout: 10), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.hasSuffix("home host=a.example client= uri=/once\n"), "\(answer.debugDescription)")
        // The client has not closed, and the connection is over: logged, and its socket gone from the agent.
        let line = tailgate.waitForConnectionLine(containing: ["client=127.0.0.95:", "outcome=closed"], timeout: 10)
        #expect(line != nil, "\(tailgate.process.output.suffix(1_500))")
        #expect(line?.contains("reason=") == false, "\(line ?? "")")
    }
}
