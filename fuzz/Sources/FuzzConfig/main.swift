import FuzzSupport
import TailgateConfig

/// What libFuzzer runs on each input: the input is the text of a config file.
///
/// Loads it as `tailgate run` and `tailgate check` do. A rejected file must come with at least
/// one error, each naming the file and a line and column inside the text; a loaded one must
/// route only to upstreams it defines, and locate its addresses inside the text.
func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let fileName = "fuzz.toml"
    let bytes = Array(FuzzerDriver.bytes(data, size))
    let bounds = TextBounds(bytes)
    do {
        let configuration = try ConfigurationLoader.load(bytes: bytes, file: fileName)
        ConfigurationCheck.check(configuration, bounds: bounds)
    } catch {
        Invariant.check(!error.errors.isEmpty, "rejected without an error")
        for problem in error.errors {
            Invariant.check(problem.file == fileName, "error in file \(problem.file): \(problem)")
            Invariant.check(
                bounds.contains(line: problem.position.line, column: problem.position.column),
                "error outside the text: \(problem)"
            )
            Invariant.check(!problem.message.isEmpty, "error without a message at \(problem.position)")
        }
    }
    return 0
}

FuzzerDriver.run(fuzzConfig)
