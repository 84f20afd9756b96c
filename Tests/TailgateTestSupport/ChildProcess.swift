import Foundation
import Synchronization

/// A process a test starts with posix_spawn, its stdout and stderr appended to a file; stopped by its PID
/// only, and reaped by this object (killed with SIGKILL if it is still running when the object goes away).
///
/// Foundation's Process races on file descriptors when several threads spawn at once (seen as EBADF and as
/// output going missing), and the tests run in parallel, so they spawn and reap children themselves.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// Where stdout goes, and stderr unless it was given a file of its own.
    public let outputPath: String
    /// The exit status once the process has been reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` (a path) with `arguments`: stdin from `inputPath` (else /dev/null), stdout appended
    /// to `outputPath` and stderr to `errorPath` (else to `outputPath` too), with this process's environment
    /// plus `environment`.
    public init(
        _ executable: String, _ arguments: [String], outputPath: String, errorPath: String? = nil, inputPath: String? = nil,
        environment: [String: String] = [:]
    ) throws {
        self.outputPath = outputPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing else is inherited: a descriptor another test holds (a socket, a pipe's write end) kept open
        // in this child would keep that test's peer or read waiting. (glibc ≥ 2.34, looked up: Swift's Glibc
        // module does not export it.)
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Children start with default signal handling, whatever the test runner blocks or ignores.
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw TestFailure("posix_spawn \(executable): \(String(cString: strerror(result)))") }
        pid = child
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// Whether the process is still running; reaps it once it has exited.
    public var isRunning: Bool {
        reaped.withLock { status in
            guard status == nil else { return false }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            guard result == pid else { return result == 0 }
            let signal = raw & 0x7F
            status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
            return false
        }
    }

    /// The exit status (128 + the signal for a signalled process), nil while it runs.
    public var exitStatus: Int32? {
        _ = isRunning
        return reaped.withLock { $0 }
    }

    /// Everything the process has written to `outputPath` so far.
    public var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits up to `timeout` seconds; true once the process has exited.
    public func waitForExit(timeout: Double) -> Bool {
        Poll.until(timeout: timeout, every: 0.005) { !isRunning }
    }

    /// Waits up to `timeout` seconds for `text` in the output.
    public func waitForOutput(_ text: String, timeout: Double = 20) -> Bool {
        Poll.until(timeout: timeout) { output.contains(text) }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds; returns the exit status.
    @discardableResult
    public func stop(grace: Double = 10) -> Int32 {
        signal(SIGTERM)
        if !waitForExit(timeout: grace) {
            signal(SIGKILL)
            _ = waitForExit(timeout: 5)
        }
        return exitStatus ?? -1
    }
}
