import Foundation

/// A process a test starts with posix_spawn (Foundation's Process races on descriptors when
/// tests spawn from several threads at once), its stdout and stderr appended to a file.
/// Stopped by its PID with SIGTERM, then SIGKILL; reaped by this object.
final class SpawnedProcess: @unchecked Sendable {
    let pid: pid_t
    let outputPath: String
    private let lock = NSLock()
    private var exitCode: Int32?

    init(_ executable: String, _ arguments: [String], outputPath: String) throws {
        self.outputPath = outputPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else is inherited: a descriptor another test holds (a socket, a pipe's write end) kept open
        // in this child would keep that test's peer or read waiting. (glibc ≥ 2.34, looked up: Swift's
        // Glibc module does not export it.)
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw TestFailure("posix_spawn \(executable): \(String(cString: strerror(result)))") }
        pid = child
    }

    deinit {
        stop()
    }

    /// Runs a command to completion (at most `timeout`) and throws unless it exits with 0.
    static func run(_ executable: String, _ arguments: [String], outputPath: String, timeout: Duration = .seconds(30)) throws {
        let process = try SpawnedProcess(executable, arguments, outputPath: outputPath)
        guard waitUntil(timeout: timeout, { !process.isRunning }) else {
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) did not finish")
        }
        guard process.status == 0 else {
            let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) exited with \(process.status ?? -1): \(output)")
        }
    }

    /// Whether the process is still running; reaps it once it has exited.
    var isRunning: Bool {
        lock.withLock {
            guard exitCode == nil else { return false }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return true }
            exitCode = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
            return false
        }
    }

    /// The exit code (128 + the signal for a signalled process), nil while running.
    var status: Int32? {
        _ = isRunning
        return lock.withLock { exitCode }
    }

    /// Everything the process has printed so far.
    var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// SIGTERM, and SIGKILL if it has not exited within five seconds.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        if waitUntil(timeout: .seconds(5), { !self.isRunning }) { return }
        kill(pid, SIGKILL)
        _ = waitUntil(timeout: .seconds(5)) { !self.isRunning }
    }
}
