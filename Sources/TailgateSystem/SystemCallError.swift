import Glibc
import NIOCore

/// A failed system call: its name and errno, as an operator reads them. The one place errno becomes an error.
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: CInt

    /// The call that just failed, with the calling thread's `errno` unless given.
    public init(_ call: String, errno: CInt = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        described(by: nil)
    }

    /// "`side`: call: text (errno N)", built in one string: a connection that ends on a reset or broken pipe
    /// (most do, when clients close without waiting for the server's close_notify) writes this in its log line.
    public func described(by side: StaticString?) -> String {
        let text = Self.errorText(errno)
        var line = ""
        line.reserveCapacity(32 + call.utf8.count + text.utf8.count)
        if let side {
            line += side.description
            line += ": "
        }
        line += call
        line += ": "
        line += text
        line += " (errno "
        line += String(errno)
        line += ")"
        return line
    }

    /// strerror(3)'s text for the errno values Linux defines, read once: each strerror call goes through
    /// gettext's catalog lookup.
    private static let errorTexts: [String] = (0..<134).map { String(cString: strerror(CInt($0))) }

    public static func errorText(_ errno: CInt) -> String {
        errno >= 0 && Int(errno) < errorTexts.count ? errorTexts[Int(errno)] : String(cString: strerror(errno))
    }
}

extension SystemCallError {
    /// NIO's `IOError` in the same words as the relay's, "read: Connection reset by peer (errno 104)":
    /// NIO's own text names the Swift function ("read(descriptor:pointer:size:)") and leaves a parenthesis open.
    public init?(nio error: any Error) {
        guard let error = error as? IOError else { return nil }
        let text = String(describing: error)
        self.init(String(text.prefix { $0 != "(" && $0 != ":" }), errno: error.errnoCode)
    }

    /// Any error as an operator reads it: NIO's `IOError` as above, anything else as it describes itself;
    /// prefixed with `side` ("client: …") when given.
    public static func describe(_ error: any Error, side: StaticString? = nil) -> String {
        if let failure = SystemCallError(nio: error) { return failure.described(by: side) }
        return side.map { "\($0): \(error)" } ?? "\(error)"
    }
}
