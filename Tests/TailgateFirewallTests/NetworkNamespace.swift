import Glibc
import Testing

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
        try Command.check(["ip", "netns", "add", name])
        try Command.check(["ip", "-n", name, "link", "set", "lo", "up"])
    }

    /// Deletes the namespace (and with it its interfaces and nftables ruleset).
    func remove() {
        _ = try? Command.run(["ip", "netns", "delete", name])
    }

    /// Runs a command inside the namespace.
    func run(_ arguments: [String]) throws -> CommandResult {
        try Command.run(["ip", "netns", "exec", name] + arguments)
    }

    /// Runs a command inside the namespace that must succeed; returns its stdout.
    @discardableResult
    func check(_ arguments: [String]) throws -> String {
        try Command.check(["ip", "netns", "exec", name] + arguments)
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
            if !started { continuation.resume(throwing: Command.Failure(description: "pthread_create failed")) }
        }
    }
}

/// Starts a detached pthread and joins network namespaces (setns is not in Swift's Glibc module).
final class ThreadStart: Sendable {
    private let body: @Sendable () -> Void

    private init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    /// Runs `body` on a new detached thread; false when the thread could not be created.
    static func spawn(_ body: @escaping @Sendable () -> Void) -> Bool {
        let context = Unmanaged.passRetained(ThreadStart(body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<ThreadStart>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// Moves the calling thread into the network namespace at `path`.
    static func enterNetworkNamespace(_ path: String) throws {
        typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else {
            throw Command.Failure(description: "setns not found in libc")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Command.Failure(description: "open \(path): errno \(errno)") }
        defer { close(fd) }
        let cloneNewNet: Int32 = 0x4000_0000
        guard unsafeBitCast(symbol, to: SetNamespace.self)(fd, cloneNewNet) == 0 else {
            throw Command.Failure(description: "setns \(path): errno \(errno)")
        }
    }
}
