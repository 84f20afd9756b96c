import COpenSSL
import Glibc

/// Reads OpenSSL's per-thread error queue.
enum OpenSSLErrorQueue {
    /// The reason of the earliest queued error (such as "tlsv1 alert unknown ca"), and empties
    /// the queue so that nothing is left for the next check on this thread.
    static func takeReason() -> String {
        let code = ERR_get_error()
        defer { ERR_clear_error() }
        guard code != 0 else { return "unknown error" }
        // ERR_SYSTEM_ERROR (a macro): the top bit marks an errno, kept in the other 31 bits.
        if code & 0x8000_0000 != 0 {
            return String(cString: strerror(Int32(truncatingIfNeeded: code & 0x7FFF_FFFF)))
        }
        if let reason = ERR_reason_error_string(code) {
            return String(cString: reason)
        }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
