import Foundation

/// What a finished command printed and how it exited.
public struct CommandResult: Sendable {
    /// The exit status (128 + the signal for a signalled command, 137 for one killed at its timeout); -1
    /// when it could not be started.
    public let status: Int32
    /// stdout, with stderr in it unless the errors were asked for apart.
    public let output: String
    /// stderr when asked for apart, else empty.
    public let errors: String
}

/// Commands run to completion as `ChildProcess`es, never waited for forever.
public enum Command {
    /// Runs `executable` (a path, or a name looked up with `executable(named:)`) with `input` on its stdin,
    /// for at most `timeout` seconds, then SIGKILL.
    public static func run(
        _ executable: String, _ arguments: [String], input: String? = nil, errorsApart: Bool = false, timeout: Double = 60
    ) -> CommandResult {
        let base = NSTemporaryDirectory() + "tailgate-command-\(UUID().uuidString)"
        let outputPath = base + ".out", errorPath = base + ".err", inputPath = base + ".in"
        defer {
            for path in [outputPath, errorPath, inputPath] { unlink(path) }
        }
        guard let path = executable.contains("/") ? executable : Self.executable(named: executable) else {
            return CommandResult(status: -1, output: "", errors: "\(executable): not found")
        }
        if let input {
            guard FileManager.default.createFile(atPath: inputPath, contents: Data(input.utf8)) else {
                return CommandResult(status: -1, output: "", errors: "cannot write \(inputPath)")
            }
        }
        let child: ChildProcess
        do {
            child = try ChildProcess(path, arguments, outputPath: outputPath, errorPath: errorsApart ? errorPath : nil,
                                     inputPath: input == nil ? nil : inputPath)
        } catch {
            return CommandResult(status: -1, output: "", errors: "cannot run \(executable): \(error)")
        }
        if !child.waitForExit(timeout: timeout) {
            child.signal(SIGKILL)
            _ = child.waitForExit(timeout: 5)
        }
        func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return CommandResult(status: child.exitStatus ?? -1, output: read(outputPath), errors: errorsApart ? read(errorPath) : "")
    }

    /// Runs a command that must exit with 0 and returns its stdout (stderr apart); throws with both otherwise.
    @discardableResult
    public static func check(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> String {
        let result = run(executable, arguments, errorsApart: true, timeout: timeout)
        guard result.status == 0 else {
            throw TestFailure("\(([executable] + arguments).joined(separator: " ")) exited with \(result.status): \(result.errors)\(result.output)")
        }
        return result.output
    }

    /// The path of the executable `name` on PATH or in the sbin directories (which a root shell has on PATH
    /// and the test runner may not), if there is one.
    public static func executable(named name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
