/// Stops the fuzzer with a message when something that must hold does not.
///
/// `fatalError` rather than `precondition`: its message is printed in optimized builds too,
/// and libFuzzer saves the input that triggered it as a crash artifact.
public enum Invariant {
    /// Crashes with `message` unless `condition` holds.
    @inlinable
    public static func check(
        _ condition: Bool,
        _ message: @autoclosure () -> String,
        file: StaticString = #fileID,
        line: UInt = #line
    ) {
        if !condition {
            fatalError("invariant violated: \(message())", file: file, line: line)
        }
    }
}
