import NIOCore
import TailgateConfig

/// Failures that stop the agent from starting or a reload from applying.
public enum AgentError: Error, CustomStringConvertible {
    case bindFailed(listener: String, address: SocketAddress, underlying: any Error)

    public var description: String {
        switch self {
        case .bindFailed(let listener, let address, let underlying):
            return "listener '\(listener)': cannot bind \(address.endpointDescription): \(underlying)"
        }
    }
}
