import Foundation

/// A process started by a test, with its output captured to a file; stopped by PID only.
final class TestProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String
    let name: String

    init(name: String, executable: String, arguments: [String], directory: String, environment: [String: String]? = nil) throws {
        self.name = name
        logPath = "\(directory)/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Everything the process wrote so far.
    var output: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    @discardableResult
    func stop(grace: Double = 10) -> Int32 {
        signal(SIGTERM)
        if !waitForExit(timeout: grace) {
            signal(SIGKILL)
            _ = waitForExit(timeout: 5)
        }
        return process.isRunning ? -1 : process.terminationStatus
    }

    func waitForExit(timeout: Double) -> Bool {
        Poll.until(timeout: timeout) { !self.process.isRunning }
    }

    /// Waits until the output contains `text`.
    func waitForOutput(_ text: String, timeout: Double = 20) -> Bool {
        Poll.until(timeout: timeout) { self.output.contains(text) }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let inputPipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : inputPipe
    do {
        try process.run()
    } catch {
        return (-1, "cannot run \(executable): \(error)")
    }
    if let input {
        inputPipe.fileHandleForWriting.write(input)
        try? inputPipe.fileHandleForWriting.close()
    }
    let collected = LockedData()
    let reader = Thread {
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        collected.set(data)
    }
    reader.start()
    let finished = Poll.until(timeout: timeout) { !process.isRunning }
    if !finished {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
    _ = Poll.until(timeout: 5) { collected.isSet }
    let output = String(decoding: collected.get(), as: UTF8.self)
    return (finished ? process.terminationStatus : -9, output)
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private(set) var isSet = false
    func set(_ value: Data) { lock.lock(); data = value; isSet = true; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}
