import TailgateTOML

/// One problem found in a configuration file, located at `file:line:col`.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file the problem is in.
    public var file: String
    /// Where in the file the offending key or value starts.
    public var position: SourcePosition
    /// The dotted key path, e.g. `listeners.public.bind[1]`, or empty for syntax errors.
    public var keyPath: String
    /// What is wrong, in words an operator understands.
    public var message: String

    public init(file: String, position: SourcePosition, keyPath: String, message: String) {
        self.file = file
        self.position = position
        self.keyPath = keyPath
        self.message = message
    }

    /// `file:line:col: key.path: message`, the form editors and `nginx -t` users know.
    public var description: String {
        let location = "\(file):\(position.line):\(position.column)"
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

/// Every problem found while loading a configuration, in file order.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigurationError]

    public init(_ errors: [ConfigurationError]) {
        self.errors = errors.sorted { $0.position < $1.position }
    }

    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
