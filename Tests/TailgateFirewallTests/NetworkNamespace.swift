import Glibc
import Testing
import TailgateTestSupport

/// A network namespace made by a test (`ip netns add tg-test-…`); remove it with `remove()` in a defer.
///
/// Swift code runs inside it through `perform`: a fresh pthread opens /var/run/netns/NAME, calls
/// setns(CLONE_NEWNET), which moves only that thread, runs the (synchronous) closure there and exits.
/// Netlink sockets belong to the namespace of the thread that creates them, so everything
/// NetlinkFirewall does in the closure happens in the test's namespace and nowhere else.
final class NetworkNamespace: Sendable {
    let name: String

    init(_ label: String = "") throws {
        try #require(Privileges.canUseNamespaces, "CI must run the firewall namespace tests as root with ip and nft")
        name = "tg-test-\(label.isEmpty ? "" : label + "-")\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        try Command.check("ip", ["netns", "add", name])
        try Command.check("ip", ["-n", name, "link", "set", "lo", "up"])
    }

    /// Deletes the namespace (and with it its interfaces and nftables ruleset).
    func remove() {
        _ = Command.run("ip", ["netns", "delete", name])
    }

    /// Runs a command inside the namespace that must succeed; returns its stdout.
    @discardableResult
    func check(_ arguments: [String]) throws -> String {
        try Command.check("ip", ["netns", "exec", name] + arguments)
    }

    /// Runs `body` on a new thread that has joined this namespace.
    func perform<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        let path = "/var/run/netns/\(name)"
        return try await withCheckedThrowingContinuation { continuation in
            let started = ThreadStart.spawn {
                do {
                    try ThreadStart.enterNetworkNamespace(path)
                    continuation.resume(returning: try body())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            if !started { continuation.resume(throwing: TestFailure("pthread_create failed")) }
        }
    }
}
