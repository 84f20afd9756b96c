import Foundation
import Testing
import TailgateTOML

/// Runs every TOML 1.0 file of toml-test (listed in `files-toml-1.0.0`).
/// Without the suite the tests are skipped, unless `CI` is set: then they fail.
@Suite(.enabled(
    if: TOMLTestSuite.isAvailable || TOMLTestSuite.isRequired,
    "toml-test suite not found at \(TOMLTestSuite.directory.path); set CI=1 to make this a failure"
))
struct TOMLConformanceTests {
    @Test func everyValidDocumentParsesToItsExpectedJSON() throws {
        let suite = try loadSuite()
        #expect(suite.validDocuments.count > 0)
        var failures: [String] = []
        for path in suite.validDocuments {
            do {
                let table = try TOMLParser.parse(bytes: suite.bytes(of: path))
                if let difference = try suite.expectedJSON(for: path).difference(from: TaggedJSON(table)) {
                    failures.append("\(path): \(difference)")
                }
            } catch {
                failures.append("\(path): \(error)")
            }
        }
        for failure in failures { Issue.record(Comment(rawValue: failure)) }
        #expect(failures.isEmpty, "\(failures.count) of \(suite.validDocuments.count) valid documents failed")
    }

    @Test func everyInvalidDocumentIsRejected() throws {
        let suite = try loadSuite()
        #expect(suite.invalidDocuments.count > 0)
        var accepted: [String] = []
        for path in suite.invalidDocuments {
            do {
                _ = try TOMLParser.parse(bytes: suite.bytes(of: path))
                accepted.append(path)
            } catch {
                // Rejected, as it should be; the error is typed TOMLParseError.
            }
        }
        for path in accepted { Issue.record("\(path): accepted, but toml-test says it is invalid") }
        #expect(accepted.isEmpty, "\(accepted.count) of \(suite.invalidDocuments.count) invalid documents were accepted")
    }

    private func loadSuite() throws -> TOMLTestSuite {
        // Only fails when CI is set; otherwise the suite is disabled when missing.
        try #require(TOMLTestSuite.isAvailable, "toml-test suite not found at \(TOMLTestSuite.directory.path)")
        return try TOMLTestSuite.load()
    }
}
