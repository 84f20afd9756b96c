import Foundation
import TailgateTestSupport

/// A temporary directory for one test, the processes it starts (stopped at `tearDown`) and its certificates.
final class Sandbox: @unchecked Sendable {
    let directory: String
    private var processes: [ChildProcess] = []

    init(_ name: String) throws {
        let base = FileManager.default.temporaryDirectory.path
        directory = "\(base)/tailgate-it-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // nginx workers and tools may run as other users.
        chmod(directory, 0o755)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    func start(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        let process = try ChildProcess(executable, arguments, outputPath: path("\(name).log"), environment: environment)
        processes.append(process)
        return process
    }

    /// Stops every process this sandbox started and removes the directory unless the test failed and KEEP_SANDBOX is set.
    func tearDown() {
        for process in processes.reversed() { process.stop(grace: 5) }
        if ProcessInfo.processInfo.environment["KEEP_SANDBOX"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// The sandbox's certificate authority (made on first use): `ca.crt`, and the certificates it issues,
    /// `NAME.crt` and `NAME.key`, all in the sandbox's directory.
    var certificates: TestCertificateAuthority {
        get throws { try TestCertificateAuthority(directory: directory) }
    }

    /// The repository root (two levels above this file's directory).
    static let repositoryRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// The tailgate binary built with the tests (TAILGATE_BINARY overrides).
    static var tailgateBinary: String {
        if let path = ProcessInfo.processInfo.environment["TAILGATE_BINARY"] { return path }
        for configuration in ["debug", "release"] {
            let candidate = "\(repositoryRoot)/.build/\(configuration)/tailgate"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "\(repositoryRoot)/.build/debug/tailgate"
    }
}

enum SandboxError: Error, CustomStringConvertible {
    case command(String)
    case missingTool(String)
    case timeout(String)

    var description: String {
        switch self {
        case .command(let text): return text
        case .missingTool(let name): return "\(name) is not installed (run scripts/install-deps)"
        case .timeout(let what): return "timed out: \(what)"
        }
    }
}
