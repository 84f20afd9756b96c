import Glibc

/// Why a firewall operation failed. Every case says what happened and what to do about it.
public enum FirewallError: Error, Sendable, CustomStringConvertible {
    /// The process lacks CAP_NET_ADMIN in its network namespace (EPERM/EACCES); carries the operation.
    case permissionDenied(String)
    /// The kernel has no usable nf_tables (module missing, family unsupported); carries the details.
    case unavailable(String)
    /// The kernel refused the batch: which message (and what it was) and why. Nothing was changed.
    case rejected(String)
    /// A system call failed.
    case system(call: String, errno: Int32)
    /// What the batch deletes is not there (ENOENT): a ban that expired meanwhile. Nothing was changed.
    case notFound(String)

    public var description: String {
        switch self {
        case .permissionDenied(let operation):
            return "\(operation): permission denied; nftables needs CAP_NET_ADMIN "
                + "(run as root or grant the capability, e.g. AmbientCapabilities=CAP_NET_ADMIN in the systemd unit)"
        case .unavailable(let details):
            return "nf_tables is not available: \(details); load it with `modprobe nf_tables` "
                + "or use a kernel built with CONFIG_NF_TABLES and CONFIG_NF_TABLES_INET"
        case .rejected(let details):
            return "the kernel refused the firewall batch, nothing was changed: \(details)"
        case .system(let call, let errno):
            return "\(call) failed: \(FirewallError.errorText(errno)) (errno \(errno))"
        case .notFound(let details):
            return "\(details): no such element (it may have expired)"
        }
    }

    /// `strerror` text for an errno value.
    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// Maps an errno from a netlink exchange to the case an operator can act on.
    static func from(errno code: Int32, during operation: String) -> FirewallError {
        switch code {
        case EPERM, EACCES:
            return .permissionDenied(operation)
        case EPROTONOSUPPORT, EAFNOSUPPORT, ENOPROTOOPT:
            return .unavailable("\(operation): \(errorText(code))")
        default:
            return .system(call: operation, errno: code)
        }
    }
}
