import Glibc

/// What a finished command printed and how it exited.
struct CommandResult: Sendable {
    let status: Int32
    let output: String
    let errors: String
}

/// Runs programs with posix_spawn (Foundation's Process races on descriptors under threads), always
/// through coreutils `timeout`, so no test waits for a child forever.
enum Command {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `arguments` (found on PATH) for at most `seconds`, capturing stdout and stderr.
    static func run(_ arguments: [String], seconds: Int = 20) throws -> CommandResult {
        var outputPipe: [Int32] = [0, 0]
        var errorPipe: [Int32] = [0, 0]
        guard pipe(&outputPipe) == 0, pipe(&errorPipe) == 0 else { throw Failure(description: "pipe failed") }
        // Keep the read ends out of other children spawned meanwhile (tests run in parallel).
        for fd in [outputPipe[0], errorPipe[0], outputPipe[1], errorPipe[1]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)
        // Nor does this child inherit anything of other tests' (the pipes above are not close-on-exec from
        // their first instant). glibc ≥ 2.34, looked up: Swift's Glibc module does not export it.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        let argv = (["timeout", "-k", "2", "\(seconds)"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let spawned = posix_spawnp(&child, "timeout", &actions, nil, argv, environ)
        close(outputPipe[1])
        close(errorPipe[1])
        defer {
            close(outputPipe[0])
            close(errorPipe[0])
        }
        guard spawned == 0 else { throw Failure(description: "posix_spawnp \(arguments.joined(separator: " ")): error \(spawned)") }
        let (output, errors) = readBoth(outputPipe[0], errorPipe[0])
        var raw: Int32 = 0
        while waitpid(child, &raw, 0) < 0, errno == EINTR {}
        let signal = raw & 0x7F
        return CommandResult(status: signal == 0 ? (raw >> 8) & 0xFF : 128 + signal, output: output, errors: errors)
    }

    /// Runs a command that must succeed and returns its stdout.
    @discardableResult
    static func check(_ arguments: [String]) throws -> String {
        let result = try run(arguments)
        guard result.status == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) exited \(result.status): \(result.errors)\(result.output)")
        }
        return result.output
    }

    /// Whether `name` is an executable on PATH.
    static func exists(_ name: String) -> Bool {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":").contains { access("\($0)/\(name)", X_OK) == 0 }
    }

    /// Reads two pipes to their end without letting either fill up.
    private static func readBoth(_ first: Int32, _ second: Int32) -> (String, String) {
        var collected: [[UInt8]] = [[], []]
        var open = [true, true]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while open.contains(true) {
            var descriptors = [first, second].enumerated().map { index, fd in pollfd(fd: open[index] ? fd : -1, events: Int16(POLLIN), revents: 0) }
            guard poll(&descriptors, 2, 60_000) > 0 else { break }
            for index in 0..<2 where open[index] && descriptors[index].revents != 0 {
                let count = read(descriptors[index].fd, &buffer, buffer.count)
                if count > 0 { collected[index] += buffer[0..<count] } else { open[index] = false }
            }
        }
        return (String(decoding: collected[0], as: UTF8.self), String(decoding: collected[1], as: UTF8.self))
    }
}
