import Foundation

/// A process started by a test, with its output captured to a file; stopped by PID only.
final class TestProcess: @unchecked Sendable {
    let child: ChildProcess
    let logPath: String
    let name: String

    init(name: String, executable: String, arguments: [String], directory: String, environment: [String: String]? = nil) throws {
        self.name = name
        logPath = "\(directory)/\(name).log"
        child = try ChildProcess(executable: executable, arguments: arguments, outputPath: logPath, environment: environment)
    }

    var pid: Int32 { child.pid }
    var isRunning: Bool { child.isRunning }
    /// The exit status, or nil while the process runs.
    var exitStatus: Int32? { child.exitStatus }

    /// Everything the process wrote so far.
    var output: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    func signal(_ signal: Int32) {
        child.signal(signal)
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    @discardableResult
    func stop(grace: Double = 10) -> Int32 {
        signal(SIGTERM)
        if !waitForExit(timeout: grace) {
            signal(SIGKILL)
            _ = waitForExit(timeout: 5)
        }
        return exitStatus ?? -1
    }

    func waitForExit(timeout: Double) -> Bool {
        child.wait(timeout: timeout)
    }

    /// Waits until the output contains `text`.
    func waitForOutput(_ text: String, timeout: Double = 20) -> Bool {
        Poll.until(timeout: timeout) { self.output.contains(text) }
    }

    deinit {
        if child.isRunning {
            kill(child.pid, SIGKILL)
            _ = child.wait(timeout: 5)
        }
    }
}

enum Poll {
    /// Polls `condition` every 20 ms until true or `timeout` seconds passed.
    static func until(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}

/// Runs a command to completion and returns its exit status and combined output.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 60, input: Data? = nil) -> (status: Int32, output: String) {
    let base = FileManager.default.temporaryDirectory.path + "/tailgate-cmd-\(UUID().uuidString)"
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".in")
    }
    var inputPath: String?
    if let input {
        _ = FileManager.default.createFile(atPath: base + ".in", contents: input)
        inputPath = base + ".in"
    }
    let child: ChildProcess
    do {
        child = try ChildProcess(executable: executable, arguments: arguments, outputPath: base + ".out", inputPath: inputPath)
    } catch {
        return (-1, "cannot run \(executable): \(error)")
    }
    if !child.wait(timeout: timeout) {
        kill(child.pid, SIGKILL)
        _ = child.wait(timeout: 5)
        return (-9, (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "")
    }
    return (child.exitStatus ?? -1, (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "")
}
