import Foundation

/// A temporary directory with a test CA and its certificates, and the servers a test starts;
/// the servers are stopped and the directory removed when the bed goes away.
///
/// Every leaf has the key `leaf.key`. The CA signs `app.pem` (app.example.test and 127.0.0.1,
/// valid until `appNotAfter`), `expired.pem`, `future.pem` (not valid yet) and `other.pem`
/// (other.example.test); `self-signed.pem` is for app.example.test but signed by its own key.
final class TestBed: @unchecked Sendable {
    static let openssl = "/usr/bin/openssl"
    /// app.pem's notAfter: 2098-07-04 12:00:00 UTC.
    static let appNotAfter: Int64 = 4_055_313_600
    /// expired.pem's notAfter: 2020-01-02 00:00:00 UTC.
    static let expiredNotAfter: Int64 = 1_577_923_200
    /// future.pem's notAfter: 2099-01-02 00:00:00 UTC.
    static let futureNotAfter: Int64 = 4_070_995_200

    let directory: String
    private let lock = NSLock()
    private var processes: [SpawnedProcess] = []

    init() throws {
        directory = NSTemporaryDirectory() + "tailgate-probe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/issued", withIntermediateDirectories: true)
        do {
            try makeCertificates()
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    deinit {
        for process in lock.withLock({ processes }) {
            process.stop()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The path of `name` in the bed's directory.
    func path(_ name: String) -> String {
        directory + "/" + name
    }

    /// Starts `executable` with its output in `<name>.log`; stopped when the bed goes away.
    func start(_ executable: String, _ arguments: [String], name: String) throws -> SpawnedProcess {
        let process = try SpawnedProcess(executable, arguments, outputPath: path(name + ".log"))
        lock.withLock { processes.append(process) }
        return process
    }

    private func makeCertificates() throws {
        try Data("".utf8).write(to: URL(fileURLWithPath: path("index.txt")))
        try Data("1000\n".utf8).write(to: URL(fileURLWithPath: path("serial")))
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: path("ca.cnf")))
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try openssl(["req", "-config", path("ca.cnf"), "-x509", "-extensions", "ca_cert"] + key + [
            "-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=Tailgate Probe Test CA", "-days", "30",
        ])
        try openssl(["req", "-config", path("ca.cnf"), "-new"] + key + [
            "-keyout", path("leaf.key"), "-out", path("app.csr"), "-subj", "/CN=app.example.test",
        ])
        try openssl(["req", "-config", path("ca.cnf"), "-new", "-key", path("leaf.key"),
                     "-out", path("other.csr"), "-subj", "/CN=other.example.test"])
        try sign("app.csr", extensions: "leaf_app", dates: ["-startdate", "20200101000000Z", "-enddate", "20980704120000Z"], into: "app.pem")
        try sign("app.csr", extensions: "leaf_app", dates: ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"], into: "expired.pem")
        try sign("app.csr", extensions: "leaf_app", dates: ["-startdate", "20990101000000Z", "-enddate", "20990102000000Z"], into: "future.pem")
        try sign("other.csr", extensions: "leaf_other", dates: ["-days", "30"], into: "other.pem")
        try openssl(["req", "-config", path("ca.cnf"), "-x509", "-extensions", "leaf_app", "-key", path("leaf.key"),
                     "-out", path("self-signed.pem"), "-subj", "/CN=app.example.test", "-days", "30"])
    }

    private func sign(_ request: String, extensions: String, dates: [String], into certificate: String) throws {
        try openssl(["ca", "-batch", "-config", path("ca.cnf"), "-notext", "-extensions", extensions,
                     "-cert", path("ca.pem"), "-keyfile", path("ca.key"), "-in", path(request), "-out", path(certificate)] + dates)
    }

    private func openssl(_ arguments: [String]) throws {
        try SpawnedProcess.run(Self.openssl, arguments, outputPath: path("openssl.log"))
    }

    private var configuration: String {
        """
        [ ca ]
        default_ca = test_ca
        [ test_ca ]
        database = \(path("index.txt"))
        new_certs_dir = \(path("issued"))
        serial = \(path("serial"))
        default_md = sha256
        policy = policy_any
        unique_subject = no
        [ policy_any ]
        commonName = supplied
        [ req ]
        distinguished_name = dn
        [ dn ]
        [ ca_cert ]
        basicConstraints = critical,CA:TRUE
        keyUsage = critical,keyCertSign,cRLSign
        subjectKeyIdentifier = hash
        [ leaf_app ]
        basicConstraints = CA:FALSE
        keyUsage = critical,digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:app.example.test,IP:127.0.0.1
        [ leaf_other ]
        basicConstraints = CA:FALSE
        keyUsage = critical,digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:other.example.test

        """
    }
}
