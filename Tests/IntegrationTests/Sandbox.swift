import Foundation
import Synchronization

/// A temporary directory for one test, with helpers to find free ports, make certificates and locate tools.
final class Sandbox: @unchecked Sendable {
    let directory: String
    private var processes: [TestProcess] = []

    init(_ name: String) throws {
        let base = FileManager.default.temporaryDirectory.path
        directory = "\(base)/tailgate-it-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // nginx workers and tools may run as other users.
        chmod(directory, 0o755)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    func start(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> TestProcess {
        let process = try TestProcess(name: name, executable: executable, arguments: arguments, directory: directory, environment: environment)
        processes.append(process)
        return process
    }

    /// Stops every process this sandbox started and removes the directory unless the test failed and KEEP_SANDBOX is set.
    func tearDown() {
        for process in processes.reversed() { process.stop(grace: 5) }
        if ProcessInfo.processInfo.environment["KEEP_SANDBOX"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// A TCP port nothing is bound to at the moment, on any address. It is taken below the kernel's range
    /// for outgoing connections (32768 and up by default), so that no client socket of a test running
    /// alongside holds it as its source port (a bind to the wildcard would then fail), and it is never
    /// handed out twice in this process, so that two tests do not share one (a "refused" port of one
    /// test becoming another's listener).
    static func freePort() -> Int {
        handedOut.withLock { used in
            while true {
                let port = Int.random(in: 20_000..<32_000)
                if used.contains(port) || !nothingBound(to: port) { continue }
                used.insert(port)
                return port
            }
        }
    }

    private static let handedOut = Mutex<Set<Int>>([])

    /// "127.0.0.1:PORT" for an upstream that refuses connections: a port from `freePort()` bound on 127.0.0.1
    /// by a socket that never listens and is never closed, so a connect to it is refused for the rest of
    /// the process, whatever else runs on the machine (port 9, the old choice, is discard's when inetd runs).
    static let refusingServer: String = {
        let port = freePort()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0 && bind(fd, 0x7F00_0001, port), "cannot bind 127.0.0.1:\(port): errno \(errno)")
        return "127.0.0.1:\(port)"
    }()

    /// Whether a plain bind to 0.0.0.0:`port` succeeds now (no SO_REUSEADDR: any socket on the port stops it).
    private static func nothingBound(to port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        return bind(fd, INADDR_ANY, port)
    }

    /// Binds `fd` to IPv4 `host` (host byte order) and `port`, without SO_REUSEADDR.
    private static func bind(_ fd: Int32, _ host: UInt32, _ port: Int) -> Bool {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = host.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Waits until something accepts TCP connections on host:port.
    static func waitForPort(_ port: Int, host: String = "127.0.0.1", timeout: Double = 20) -> Bool {
        Poll.until(timeout: timeout) {
            guard let client = try? RawClient(host: host, port: port) else { return false }
            client.close()
            return true
        }
    }

    /// A CA (`ca.crt`) and a certificate `NAME.crt`/`NAME.key` for the given DNS names, made with the openssl CLI.
    func makeCertificate(_ name: String, dnsNames: [String]) throws {
        func openssl(_ arguments: [String]) throws {
            let result = runCommand("/usr/bin/openssl", arguments)
            guard result.status == 0 else { throw SandboxError.command("openssl \(arguments.joined(separator: " ")): \(result.output)") }
        }
        if !FileManager.default.fileExists(atPath: path("ca.crt")) {
            try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                         "-subj", "/CN=tailgate test CA", "-keyout", path("ca.key"), "-out", path("ca.crt")])
        }
        try write("\(name).ext", "subjectAltName=" + dnsNames.map { "DNS:\($0)" }.joined(separator: ",") + "\n")
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=\(dnsNames[0])",
                     "-keyout", path("\(name).key"), "-out", path("\(name).csr")])
        try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
                     "-CAcreateserial", "-days", "2", "-extfile", path("\(name).ext"), "-out", path("\(name).crt")])
    }

    /// A certificate signed by the sandbox CA with explicit validity dates (`YYYYMMDDHHMMSSZ`), via `openssl ca`;
    /// or, with `selfSigned`, a self-signed one.
    func makeCertificate(_ name: String, dnsName: String, start: String, end: String) throws {
        func openssl(_ arguments: [String]) throws {
            let result = runCommand("/usr/bin/openssl", arguments)
            guard result.status == 0 else { throw SandboxError.command("openssl \(arguments.joined(separator: " ")): \(result.output)") }
        }
        try FileManager.default.createDirectory(atPath: path("issued"), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path("index.txt")) {
            try write("index.txt", "")
            try write("serial", "1000\n")
        }
        try write("ca.cnf", """
            [ ca ]
            default_ca = test_ca
            [ test_ca ]
            database = \(path("index.txt"))
            new_certs_dir = \(path("issued"))
            serial = \(path("serial"))
            default_md = sha256
            policy = policy_any
            unique_subject = no
            copy_extensions = copy
            [ policy_any ]
            commonName = supplied

            """)
        try write("\(name).san", "subjectAltName=DNS:\(dnsName)\n")
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=\(dnsName)",
                     "-addext", "subjectAltName=DNS:\(dnsName)", "-keyout", path("\(name).key"), "-out", path("\(name).csr")])
        try openssl(["ca", "-batch", "-config", path("ca.cnf"), "-notext", "-cert", path("ca.crt"), "-keyfile", path("ca.key"),
                     "-startdate", start, "-enddate", end, "-in", path("\(name).csr"), "-out", path("\(name).crt")])
    }

    func makeSelfSignedCertificate(_ name: String, dnsName: String) throws {
        let result = runCommand("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                     "-days", "2", "-subj", "/CN=\(dnsName)", "-addext", "subjectAltName=DNS:\(dnsName)",
                                                     "-keyout", path("\(name).key"), "-out", path("\(name).crt")])
        guard result.status == 0 else { throw SandboxError.command("openssl req -x509: \(result.output)") }
    }

    /// The repository root (two levels above this file's directory).
    static let repositoryRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// The tailgate binary built with the tests (TAILGATE_BINARY overrides).
    static var tailgateBinary: String {
        if let path = ProcessInfo.processInfo.environment["TAILGATE_BINARY"] { return path }
        for configuration in ["debug", "release"] {
            let candidate = "\(repositoryRoot)/.build/\(configuration)/tailgate"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "\(repositoryRoot)/.build/debug/tailgate"
    }

    /// Finds a tool on PATH or in the sbin directories.
    static func tool(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

enum SandboxError: Error, CustomStringConvertible {
    case command(String)
    case missingTool(String)
    case timeout(String)

    var description: String {
        switch self {
        case .command(let text): return text
        case .missingTool(let name): return "\(name) is not installed (run scripts/install-deps)"
        case .timeout(let what): return "timed out: \(what)"
        }
    }
}
