import Foundation
import TailgateTestSupport
import Testing

/// `protocol = "tcp"` listeners: what people keep a VM for besides HTTPS — an SSH session to a home host,
/// and a stream whose server needs the client's address (PROXY protocol out).
@Suite(.serialized)
struct PlainTCPTests {
    /// A real OpenSSH session through a tcp listener: the server speaks first, so the listener must connect
    /// upstream before the client sends a byte.
    @Test func anSSHSessionCrossesATCPListener() throws {
        guard getuid() == 0, let sshd = ["/usr/sbin/sshd", "/sbin/sshd"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let ssh = Command.executable(named: "ssh"), let keygen = Command.executable(named: "ssh-keygen")
        else {
            #expect(getuid() != 0, "openssh-server and -client are test dependencies (scripts/install-deps)")
            return
        }
        let sandbox = try Sandbox("ssh")
        defer { sandbox.tearDown() }
        try Command.check(keygen, ["-q", "-t", "ed25519", "-N", "", "-f", sandbox.path("host_key")])
        try Command.check(keygen, ["-q", "-t", "ed25519", "-N", "", "-f", sandbox.path("client_key")])
        try Command.check("cp", [sandbox.path("client_key.pub"), sandbox.path("authorized_keys")])
        // sshd's privilege separation directory (the package creates it at boot).
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let sshPort = TestPort.free(), port = TestPort.free()
        try sandbox.write("sshd_config", """
            Port \(sshPort)
            ListenAddress 127.0.0.1
            HostKey \(sandbox.path("host_key"))
            AuthorizedKeysFile \(sandbox.path("authorized_keys"))
            PidFile none
            StrictModes no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            """)
        let server = try sandbox.start("sshd", sshd, ["-D", "-e", "-f", sandbox.path("sshd_config")])
        #expect(TestPort.waitUntilAccepting(sshPort), "\(server.output)")
        let tailgate = try TailgateInstance.start(config: """
            [listeners.ssh]
            bind = ["127.0.0.1:\(port)"]
            protocol = "tcp"
            default = "home"
            [upstreams.home]
            servers = ["127.0.0.1:\(sshPort)"]
            """, in: sandbox)
        let session = Command.run(ssh, [
            "-i", sandbox.path("client_key"), "-p", "\(port)", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "root@127.0.0.1", "echo tunnel-\(port) && uname -s",
        ], timeout: 60)
        #expect(session.status == 0, "\(session.output)\n\(server.output)")
        #expect(session.output.contains("tunnel-\(port)\nLinux"), "\(session.output)")
        let line = tailgate.waitForConnectionLine(containing: ["listener=ssh", "upstream=home", "server=127.0.0.1:\(sshPort)", "outcome=closed"])
        #expect(line != nil, "\(tailgate.process.output)")
        #expect(line?.contains("sni=-") == true)
    }

    /// nginx `stream { listen … proxy_protocol; }` behind a tcp listener with send_proxy: the client's
    /// address arrives; and a trusted PROXY hop in front of the listener is passed on, not the hop's address.
    @Test func aTCPListenerTellsAStreamServerTheClientsAddress() throws {
        guard let nginx = Command.executable(named: "nginx") else { throw SandboxError.missingTool("nginx") }
        let module = "/usr/lib/nginx/modules/ngx_stream_module.so"
        guard FileManager.default.fileExists(atPath: module) else {
            Issue.record("libnginx-mod-stream is a test dependency (scripts/install-deps)")
            return
        }
        let sandbox = try Sandbox("tcp-stream")
        defer { sandbox.tearDown() }
        let streamPort = TestPort.free(), port = TestPort.free(), trustedPort = TestPort.free()
        try sandbox.write("nginx.conf", """
            load_module \(module);
            master_process off;
            daemon off;
            pid \(sandbox.path("nginx.pid"));
            error_log \(sandbox.path("nginx-error.log")) info;
            events { worker_connections 64; }
            stream {
                server {
                    listen 127.0.0.1:\(streamPort) proxy_protocol;
                    return "seen $proxy_protocol_addr $proxy_protocol_port\\n";
                }
            }
            """)
        let server = try sandbox.start("nginx", nginx, ["-p", sandbox.directory, "-c", sandbox.path("nginx.conf")])
        #expect(TestPort.waitUntilAccepting(streamPort), "\(server.output)")
        _ = try TailgateInstance.start(config: """
            [listeners.mqtt]
            bind = ["127.0.0.1:\(port)"]
            protocol = "tcp"
            default = "stream"
            [listeners.from_edge]
            bind = ["127.0.0.1:\(trustedPort)"]
            protocol = "tcp"
            default = "stream"
            proxy_protocol_from = ["127.0.0.0/8"]
            [upstreams.stream]
            servers = ["127.0.0.1:\(streamPort)"]
            send_proxy = "v2"
            """, in: sandbox)
        let client = try RawClient(host: "127.0.0.1", port: port, source: "127.0.0.77")
        let clientPort = client.localPort
        let direct = String(decoding: client.receive(atLeast: 12, timeout: 10), as: UTF8.self)
        client.close()
        #expect(direct == "seen 127.0.0.77 \(clientPort)\n", "\(direct)")

        let hop = try RawClient(host: "127.0.0.1", port: trustedPort, source: "127.0.0.78")
        #expect(hop.send("PROXY TCP4 198.51.100.7 203.0.113.1 40000 1883\r\n"))
        let relayed = String(decoding: hop.receive(atLeast: 12, timeout: 10), as: UTF8.self)
        hop.close()
        #expect(relayed == "seen 198.51.100.7 40000\n", "\(relayed)")
    }
}
