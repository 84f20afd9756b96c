import NIOCore
import TailgateConfig
import TailgateProxy
import TailgateSystem
import TailgateTOML

/// Failures that stop the agent from starting or a reload from applying.
public enum AgentError: Error, CustomStringConvertible {
    /// `position` and `keyPath` locate the bind entry in the configuration file.
    case bindFailed(listener: String, address: SocketAddress, position: SourcePosition, keyPath: String, underlying: any Error)

    public var description: String {
        switch self {
        case .bindFailed(let listener, let address, _, _, let underlying):
            return "listener '\(listener)': cannot bind \(address.endpointDescription): \(SystemCallError.describe(underlying))"
        }
    }
}
