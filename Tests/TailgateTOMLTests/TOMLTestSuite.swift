import Foundation

/// The toml-test corpus in `../shared/toml-test` next to the repository,
/// restricted to the files listed in `files-toml-1.0.0`.
struct TOMLTestSuite {
    let directory: URL
    /// Paths relative to `directory`, such as `valid/bool/bool.toml`.
    let validDocuments: [String]
    let invalidDocuments: [String]

    /// The suite's expected location: `<repo>/../shared/toml-test`, found from this file's path.
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TailgateTOMLTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("../shared/toml-test")
        .standardizedFileURL

    static var isAvailable: Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("files-toml-1.0.0").path)
    }

    /// True when running in CI, where a missing suite is a failure rather than a skip.
    static var isRequired: Bool {
        !(ProcessInfo.processInfo.environment["CI"] ?? "").isEmpty
    }

    static func load() throws -> TOMLTestSuite {
        let listURL = directory.appendingPathComponent("files-toml-1.0.0")
        let list = try String(contentsOf: listURL, encoding: .utf8)
        let tomlFiles = list.split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasSuffix(".toml") }
        return TOMLTestSuite(
            directory: directory,
            validDocuments: tomlFiles.filter { $0.hasPrefix("valid/") },
            invalidDocuments: tomlFiles.filter { $0.hasPrefix("invalid/") }
        )
    }

    func bytes(of path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(path)))
    }

    /// The expected tagged JSON of a valid document: same path with `.json`.
    func expectedJSON(for path: String) throws -> TaggedJSON {
        let jsonPath = String(path.dropLast(".toml".count)) + ".json"
        return try JSONDecoder().decode(TaggedJSON.self, from: Data(contentsOf: directory.appendingPathComponent(jsonPath)))
    }
}
