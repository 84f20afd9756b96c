import COpenSSL
import Glibc
import Synchronization

/// TLS client contexts by trust source, reused across checks.
///
/// Loading the system store parses every certificate in Debian's bundle, tens of milliseconds of CPU;
/// a context made once serves every check after it. A context is made again when its file
/// changes (a new inode, size or modification time), so a replaced CA file or an
/// `update-ca-certificates` run is picked up at the next check. Failures are not kept.
final class TLSClientContextCache: Sendable {
    /// The cache `UpstreamProbe.run` uses: a process-wide cache of immutable contexts, whose only
    /// visible effect is speed.
    static let shared = TLSClientContextCache()

    /// More distinct CA files than this empties the cache before adding another.
    private static let capacity = 32

    private struct Entry {
        let context: TLSClientContext
        let identity: FileIdentity?
    }

    private let entries = Mutex<[String?: Entry]>([:])

    /// The context trusting `caFile`, or the system store when nil.
    func context(caFile: String?) throws(ProbeError) -> TLSClientContext {
        let identity = FileIdentity(path: caFile ?? Self.systemBundlePath)
        if let entry = entries.withLock({ $0[caFile] }), entry.identity == identity {
            return entry.context
        }
        // Made outside the lock: other checks go on meanwhile; a concurrent twin is harmless.
        let context = try TLSClientContext.make(caFile: caFile)
        entries.withLock { entries in
            if entries[caFile] == nil && entries.count >= Self.capacity {
                entries.removeAll()
            }
            entries[caFile] = Entry(context: context, identity: identity)
        }
        return context
    }

    /// The bundle `SSL_CTX_set_default_verify_paths` loads: `$SSL_CERT_FILE`, or OpenSSL's
    /// default (on Debian /usr/lib/ssl/cert.pem, a link to /etc/ssl/certs/ca-certificates.crt).
    private static var systemBundlePath: String {
        if let variable = getenv(X509_get_default_cert_file_env()) {
            return String(cString: variable)
        }
        return String(cString: X509_get_default_cert_file())
    }
}
