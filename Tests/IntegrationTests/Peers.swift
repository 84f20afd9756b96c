import Foundation
import TailgateConfig
import TailgateTestSupport

/// An nginx started by a test: answers with its own name, the PROXY protocol address it saw and the SNI,
/// and stores/serves files under /files/ (WebDAV PUT) for integrity checks.
struct NginxUpstream {
    let name: String
    /// Listens with `proxy_protocol`.
    let proxyPort: Int
    /// Listens without PROXY protocol.
    let plainPort: Int
    let process: ChildProcess
    let root: String

    /// The start of an nginx configuration run by a test: no daemon, files in the sandbox, and an open
    /// `http {` block (the caller adds its servers and closes it).
    static func preamble(_ name: String, in sandbox: Sandbox) throws -> String {
        let temp = sandbox.path("tmp-\(name)")
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        return """
            master_process off;
            daemon off;
            pid \(sandbox.path("nginx-\(name).pid"));
            error_log \(sandbox.path("nginx-\(name)-error.log")) info;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(temp)/body;
                proxy_temp_path \(temp)/proxy;
                fastcgi_temp_path \(temp)/fastcgi;
                uwsgi_temp_path \(temp)/uwsgi;
                scgi_temp_path \(temp)/scgi;

            """
    }

    static func start(_ name: String, in sandbox: Sandbox, certificate: String = "server") throws -> NginxUpstream {
        guard let nginx = Command.executable(named: "nginx") else { throw SandboxError.missingTool("nginx") }
        let proxyPort = TestPort.free(), plainPort = TestPort.free()
        let root = sandbox.path("www-\(name)")
        try FileManager.default.createDirectory(atPath: "\(root)/files", withIntermediateDirectories: true)
        try sandbox.write("nginx-\(name).conf", try preamble(name, in: sandbox) + """
                server {
                    listen 127.0.0.1:\(proxyPort) ssl proxy_protocol;
                    listen 127.0.0.1:\(plainPort) ssl;
                    ssl_certificate \(sandbox.path("\(certificate).crt"));
                    ssl_certificate_key \(sandbox.path("\(certificate).key"));
                    root \(root);
                    location / {
                        default_type text/plain;
                        return 200 "\(name) $proxy_protocol_addr $ssl_server_name\\n";
                    }
                    location /files/ {
                        dav_methods PUT;
                        create_full_put_path on;
                        client_max_body_size 512m;
                        client_body_buffer_size 1m;
                    }
                }
            }
            """)
        let process = try sandbox.start("nginx-\(name)", nginx, ["-p", sandbox.directory, "-c", sandbox.path("nginx-\(name).conf")])
        guard TestPort.waitUntilAccepting(proxyPort), TestPort.waitUntilAccepting(plainPort) else {
            throw SandboxError.timeout("nginx \(name) did not listen: \(process.output)")
        }
        return NginxUpstream(name: name, proxyPort: proxyPort, plainPort: plainPort, process: process, root: root)
    }
}

/// A tailgate started by a test on a config it writes.
struct TailgateInstance {
    let process: ChildProcess
    let configPath: String

    static func start(
        config: String, in sandbox: Sandbox, name: String = "tailgate", environment: [String: String] = [:]
    ) throws -> TailgateInstance {
        let configPath = sandbox.path("\(name).toml")
        try sandbox.write("\(name).toml", config)
        let process = try sandbox.start(name, Sandbox.tailgateBinary, ["run", "--config", configPath], environment: environment)
        let ready = Poll.until(timeout: 30) { process.output.contains(" ready ") || process.output.contains("\"msg\":\"ready\"") }
        guard ready else {
            throw SandboxError.timeout("tailgate did not become ready: \(process.output)")
        }
        return TailgateInstance(process: process, configPath: configPath)
    }

    /// A health endpoint on `healthPort` and listener `public` on `port` whose default is upstream `upstream`
    /// with `servers` and the lines `settings`; `global` goes first (a [global] table).
    static func healthConfig(
        port: Int, healthPort: Int, upstream: String = "u", servers: [String] = [TestPort.refusingAddress], settings: String = "", global: String = ""
    ) -> String {
        """
        \(global)
        [health]
        listen = "127.0.0.1:\(healthPort)"
        [listeners.public]
        bind = ["127.0.0.1:\(port)"]
        default = "\(upstream)"
        [upstreams.\(upstream)]
        servers = [\(servers.map { "\"\($0)\"" }.joined(separator: ", "))]
        \(settings)
        """
    }

    /// Starts on `healthConfig` with `servers` (by default `TestPort.refusingAddress`); returns once the
    /// endpoint accepts, with the listener's and its port.
    static func startWithHealth(
        servers: [String] = [TestPort.refusingAddress], in sandbox: Sandbox, environment: [String: String] = [:]
    ) throws -> (tailgate: TailgateInstance, port: Int, healthPort: Int) {
        let port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try start(config: healthConfig(port: port, healthPort: healthPort, servers: servers), in: sandbox, environment: environment)
        guard TestPort.waitUntilAccepting(healthPort) else { throw SandboxError.timeout("health endpoint: \(tailgate.process.output)") }
        return (tailgate, port, healthPort)
    }

    /// Starts on `config` with `[global] relay` set to `relay` (`config` must not have a [global] table).
    static func start(relay: RelayMode, config: String, in sandbox: Sandbox) throws -> TailgateInstance {
        try start(config: "[global]\nrelay = \"\(relay.rawValue)\"\n\n" + config, in: sandbox)
    }

    /// Rewrites the config file, sends SIGHUP and waits for the outcome; true when it applied.
    @discardableResult
    func reload(_ config: String) throws -> Bool {
        let before = process.output
        let applied = before.components(separatedBy: " reloaded ").count
        let failed = before.components(separatedBy: "reload failed;").count
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        process.signal(SIGHUP)
        var outcome: Bool?
        _ = Poll.until(timeout: 20) {
            let output = process.output
            if output.components(separatedBy: " reloaded ").count > applied { outcome = true }
            if output.components(separatedBy: "reload failed;").count > failed { outcome = false }
            return outcome != nil
        }
        guard let outcome else { throw SandboxError.timeout("no reload outcome: \(process.output.suffix(2_000))") }
        return outcome
    }

    /// Connection-log lines so far.
    var connectionLines: [String] {
        // Only whole lines: a batch of lines may be read while the agent is still writing it.
        let output = process.output
        let whole = output.hasSuffix("\n") ? Substring(output) : output[..<(output.lastIndex(of: "\n") ?? output.startIndex)]
        return whole.split(separator: "\n").map(String.init).filter { $0.contains(" connection ") || $0.contains("\"msg\":\"connection\"") }
    }

    /// Connection-log lines of one client address (tests give each scenario its own 127.0.0.x source).
    func connectionLines(client address: String) -> [String] {
        connectionLines.filter { $0.contains("client=\(address):") }
    }

    /// Waits until a connection-log line contains all of `parts`.
    func waitForConnectionLine(containing parts: [String], timeout: Double = 15) -> String? {
        var found: String?
        _ = Poll.until(timeout: timeout) {
            found = connectionLines.first { line in parts.allSatisfy { line.contains($0) } }
            return found != nil
        }
        return found
    }
}

/// An HAProxy in mode tcp in front of a tailgate listener, sending PROXY v2 from `source`.
struct HAProxyFront {
    let port: Int
    let process: ChildProcess

    static func start(to targetPort: Int, source: String, in sandbox: Sandbox, name: String = "haproxy") throws -> HAProxyFront {
        guard let haproxy = Command.executable(named: "haproxy") else { throw SandboxError.missingTool("haproxy") }
        let port = TestPort.free()
        try sandbox.write("\(name).cfg", """
            global
                maxconn 1000
            defaults
                mode tcp
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend front
                bind 127.0.0.1:\(port)
                default_backend tailgate
            backend tailgate
                server t 127.0.0.1:\(targetPort) send-proxy-v2 source \(source)

            """)
        let process = try sandbox.start(name, haproxy, ["-db", "-f", sandbox.path("\(name).cfg")])
        guard TestPort.waitUntilAccepting(port) else { throw SandboxError.timeout("haproxy did not listen: \(process.output)") }
        return HAProxyFront(port: port, process: process)
    }
}

/// curl through a port with `--resolve`, verifying against the sandbox CA.
func curl(_ sandbox: Sandbox, host: String, port: Int, path: String = "/", extra: [String] = []) -> CommandResult {
    Command.run("/usr/bin/curl", ["-sS", "--max-time", "20", "--cacert", sandbox.path("ca.crt"),
                                  "--resolve", "\(host):\(port):127.0.0.1"] + extra + ["https://\(host):\(port)\(path)"])
}
