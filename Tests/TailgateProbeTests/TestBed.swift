import Foundation
import TailgateTestSupport

/// A temporary directory with a test CA and its certificates, and the servers a test starts;
/// the servers are stopped and the directory removed when the bed goes away.
///
/// The CA (`ca.crt`) signs `app` (app.example.test and 127.0.0.1, valid until `appNotAfter`),
/// `expired` and `future` (not valid yet) for the same names, and `other` (other.example.test);
/// `self-signed` is for app.example.test but signed by its own key. Each is `NAME.crt` with its
/// key `NAME.key`.
final class TestBed: @unchecked Sendable {
    static let openssl = "/usr/bin/openssl"
    /// app's notAfter: 2098-07-04 12:00:00 UTC.
    static let appNotAfter: Int64 = 4_055_313_600
    /// expired's notAfter: 2020-01-02 00:00:00 UTC.
    static let expiredNotAfter: Int64 = 1_577_923_200
    /// future's notAfter: 2099-01-02 00:00:00 UTC.
    static let futureNotAfter: Int64 = 4_070_995_200

    let directory: String
    private let lock = NSLock()
    private var processes: [ChildProcess] = []

    init() throws {
        directory = NSTemporaryDirectory() + "tailgate-probe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try makeCertificates()
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    deinit {
        for process in lock.withLock({ processes }) {
            process.stop(grace: 5)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The path of `name` in the bed's directory.
    func path(_ name: String) -> String {
        directory + "/" + name
    }

    /// Starts `executable` with its output in `<name>.log`; stopped when the bed goes away.
    func start(_ executable: String, _ arguments: [String], name: String) throws -> ChildProcess {
        let process = try ChildProcess(executable, arguments, outputPath: path(name + ".log"))
        lock.withLock { processes.append(process) }
        return process
    }

    private func makeCertificates() throws {
        let authority = try TestCertificateAuthority(directory: directory)
        let app = ["app.example.test"], addresses = ["127.0.0.1"]
        try authority.issue("app", dnsNames: app, ipAddresses: addresses, validity: .between("20200101000000Z", "20980704120000Z"))
        try authority.issue("expired", dnsNames: app, ipAddresses: addresses, validity: .between("20200101000000Z", "20200102000000Z"))
        try authority.issue("future", dnsNames: app, ipAddresses: addresses, validity: .between("20990101000000Z", "20990102000000Z"))
        try authority.issue("other", dnsNames: ["other.example.test"])
        try authority.makeSelfSigned("self-signed", dnsNames: app, ipAddresses: addresses)
    }
}
