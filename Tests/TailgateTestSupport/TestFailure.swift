/// A failure of a test's own making (a helper that could not do its part), with what went wrong.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
