import Foundation

/// A certificate authority for tests, made with the openssl command in a directory: its certificate
/// `ca.crt` and key `ca.key`, and the server certificates it issues, `NAME.crt` with the key `NAME.key`.
/// Every key is P-256; every server certificate is for its DNS names and IP addresses (subjectAltName,
/// the first DNS name also as the subject), for serverAuth.
public struct TestCertificateAuthority: Sendable {
    /// When a certificate is valid.
    public enum Validity: Sendable {
        /// From now for this many days.
        case days(Int)
        /// From one moment to another, each as `YYYYMMDDHHMMSSZ`.
        case between(String, String)
    }

    public let directory: String

    /// The authority whose files are in `directory`; made there first unless it already is.
    public init(directory: String) throws {
        self.directory = directory
        guard !FileManager.default.fileExists(atPath: path("ca.crt")) else { return }
        try FileManager.default.createDirectory(atPath: path("issued"), withIntermediateDirectories: true)
        try write("index.txt", "")
        try write("serial", "1000\n")
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
            [ policy_any ]
            commonName = supplied
            [ req ]
            distinguished_name = dn
            [ dn ]
            [ ca_cert ]
            basicConstraints = critical,CA:TRUE
            keyUsage = critical,keyCertSign,cRLSign
            subjectKeyIdentifier = hash

            """)
        try openssl(["req", "-config", path("ca.cnf"), "-x509", "-extensions", "ca_cert"] + Self.newKey + [
            "-keyout", path("ca.key"), "-out", path("ca.crt"), "-subj", "/CN=tailgate test CA", "-days", "30",
        ])
    }

    /// The path of `name` in the authority's directory.
    public func path(_ name: String) -> String {
        "\(directory)/\(name)"
    }

    /// The authority's certificate, for a client to trust.
    public var certificatePath: String { path("ca.crt") }

    /// Issues `NAME.crt` (with a new key, `NAME.key`) for `dnsNames` and `ipAddresses`.
    public func issue(_ name: String, dnsNames: [String], ipAddresses: [String] = [], validity: Validity = .days(30)) throws {
        try writeExtensions(name, dnsNames: dnsNames, ipAddresses: ipAddresses)
        try openssl(["req", "-config", path("ca.cnf"), "-new"] + Self.newKey + [
            "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(dnsNames[0])",
        ])
        let dates = switch validity {
        case .days(let days): ["-days", "\(days)"]
        case .between(let start, let end): ["-startdate", start, "-enddate", end]
        }
        try openssl(["ca", "-batch", "-config", path("ca.cnf"), "-notext", "-extfile", path("\(name).ext"), "-extensions", "server",
                     "-cert", path("ca.crt"), "-keyfile", path("ca.key"), "-in", path("\(name).csr"), "-out", path("\(name).crt")] + dates)
    }

    /// Makes `NAME.crt` (with its key, `NAME.key`) for `dnsNames` and `ipAddresses`, signed by its own key
    /// rather than by the authority.
    public func makeSelfSigned(_ name: String, dnsNames: [String], ipAddresses: [String] = []) throws {
        try writeExtensions(name, dnsNames: dnsNames, ipAddresses: ipAddresses)
        try openssl(["req", "-config", path("\(name).ext"), "-x509", "-extensions", "server"] + Self.newKey + [
            "-keyout", path("\(name).key"), "-out", path("\(name).crt"), "-subj", "/CN=\(dnsNames[0])", "-days", "30",
        ])
    }

    private static let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    /// `NAME.ext`: the server certificate's extensions, also a configuration `openssl req` takes.
    private func writeExtensions(_ name: String, dnsNames: [String], ipAddresses: [String]) throws {
        let alternativeNames = dnsNames.map { "DNS:\($0)" } + ipAddresses.map { "IP:\($0)" }
        try write("\(name).ext", """
            [ req ]
            distinguished_name = dn
            [ dn ]
            [ server ]
            basicConstraints = CA:FALSE
            keyUsage = critical,digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = \(alternativeNames.joined(separator: ","))

            """)
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    private func openssl(_ arguments: [String]) throws {
        try Command.check("/usr/bin/openssl", arguments)
    }
}
