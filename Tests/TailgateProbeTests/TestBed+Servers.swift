import Foundation
import NIOCore
import TailgateTestSupport

extension TestBed {
    /// Starts `openssl s_server` on 127.0.0.1 with a port of its choosing, serving the bed's certificate
    /// `certificate` (`NAME.crt` and `NAME.key`) with `options`; returns its address once it listens.
    func startTLSServer(certificate: String, options: [String] = []) throws -> SocketAddress {
        let server = try start(Self.openssl, [
            "s_server", "-accept", "127.0.0.1:0", "-cert", path("\(certificate).crt"), "-key", path("\(certificate).key"), "-www",
        ] + options, name: "s_server-\(certificate)-\(UUID().uuidString)")
        var port: Int?
        let listening = Poll.until(timeout: 10) {
            port = Self.acceptPort(in: server.output)
            return port != nil || !server.isRunning
        }
        guard listening, let port else { throw TestFailure("s_server did not start: \(server.output)") }
        return try SocketAddress(ipAddress: "127.0.0.1", port: port)
    }

    /// Starts nginx serving the certificate `app` on 127.0.0.1 with `listen … ssl proxy_protocol`; returns
    /// its address once it accepts connections.
    func startProxyProtocolNginx() throws -> SocketAddress {
        for attempt in 1...5 {
            // The port is free when picked; another program may take it first, hence the retries.
            let port = TestPort.free()
            let prefix = path("nginx-\(attempt)")
            try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
            try Data(nginxConfiguration(port: port, prefix: prefix).utf8)
                .write(to: URL(fileURLWithPath: prefix + "/nginx.conf"))
            let nginx = try start("/usr/sbin/nginx", ["-p", prefix, "-c", prefix + "/nginx.conf", "-e", prefix + "/error.log"],
                                  name: "nginx-\(attempt)")
            let listening = Poll.until(timeout: 10) {
                TestPort.acceptsConnections(port) || !nginx.isRunning
            }
            if listening && nginx.isRunning {
                return try SocketAddress(ipAddress: "127.0.0.1", port: port)
            }
            nginx.stop(grace: 5)
        }
        throw TestFailure("nginx did not start: \((try? String(contentsOfFile: path("nginx-5/error.log"), encoding: .utf8)) ?? "")")
    }

    /// The port in s_server's "ACCEPT 127.0.0.1:PORT" line.
    private static func acceptPort(in output: String) -> Int? {
        for line in output.split(separator: "\n") where line.hasPrefix("ACCEPT 127.0.0.1:") {
            return Int(line.dropFirst("ACCEPT 127.0.0.1:".count))
        }
        return nil
    }

    private func nginxConfiguration(port: Int, prefix: String) -> String {
        """
        daemon off;
        master_process off;
        worker_processes 1;
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/error.log info;
        events { worker_connections 64; }
        http {
            access_log off;
            client_body_temp_path \(prefix)/body;
            proxy_temp_path \(prefix)/proxy;
            fastcgi_temp_path \(prefix)/fastcgi;
            uwsgi_temp_path \(prefix)/uwsgi;
            scgi_temp_path \(prefix)/scgi;
            server {
                listen 127.0.0.1:\(port) ssl proxy_protocol;
                ssl_certificate \(path("app.crt"));
                ssl_certificate_key \(path("app.key"));
                location / { return 200 "ok\\n"; }
            }
        }

        """
    }
}
