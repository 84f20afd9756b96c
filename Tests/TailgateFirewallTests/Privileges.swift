import Glibc
import TailgateTestSupport

/// Whether the tests that need root (network namespaces, nf_tables) can run here. In CI (`CI` set)
/// they must: there they are enabled anyway and fail on their first line instead of being skipped.
enum Privileges {
    static var canUseNamespaces: Bool {
        geteuid() == 0 && Command.executable(named: "ip") != nil && Command.executable(named: "nft") != nil
    }

    static var isCI: Bool {
        guard let value = getenv("CI") else { return false }
        return !String(cString: value).isEmpty
    }

    /// The condition for `.enabled(if:)`: run when possible, and always in CI.
    static var namespaceTestsEnabled: Bool { canUseNamespaces || isCI }

    static let requirement = "needs root, iproute2 and nft (network namespaces); CI runs these as root"
}
