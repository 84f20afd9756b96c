/// The first problem found in a TOML document.
public struct TOMLParseError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, phrased for an operator, for example
    /// `duplicate key 'bind' (first defined at 3:1)`.
    public var message: String
    /// Where the offending character, key or value starts.
    public var position: SourcePosition

    /// Creates an error with a message and the position it refers to.
    public init(message: String, position: SourcePosition) {
        self.message = message
        self.position = position
    }

    /// The error as `line:column: message`.
    public var description: String { "\(position): \(message)" }
}
