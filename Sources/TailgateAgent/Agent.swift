import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TailgateConfig
import TailgateProxy

/// The running daemon: binds the listeners of a configuration, serves until told to stop, then drains.
public final class Agent: Service, Sendable {
    public let configPath: String
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let initial: (TailgateConfiguration, bytes: [UInt8])

    public init(configPath: String, configuration: (TailgateConfiguration, bytes: [UInt8]), logger: Logger) {
        self.configPath = configPath
        self.initial = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    }

    public func run() async throws {
        let plan = try ProxyPlan.make(initial.0, file: configPath, generation: 1)
        var runtimes: [String: ListenerRuntime] = [:]
        var sockets: [BoundSocket] = []
        do {
            for listener in plan.configuration.listeners {
                guard let policy = plan.policies[listener.name] else { continue }
                let runtime = ListenerRuntime(policy: policy)
                runtimes[listener.name] = runtime
                for bind in listener.binds {
                    do {
                        sockets.append(try await BoundSocket.bind(bind.value, listener: runtime, group: group, logger: logger))
                    } catch {
                        throw AgentError.bindFailed(listener: listener.name, address: bind.value, underlying: error)
                    }
                    logger.info("listening", metadata: ["listener": .string(listener.name), "bind": .string(bind.value.endpointDescription)])
                }
            }
        } catch {
            for socket in sockets { await socket.close() }
            try? await group.shutdownGracefully()
            throw error
        }
        logger.info("ready", metadata: [
            "config": .string(configPath), "generation": .stringConvertible(plan.generation),
            "listeners": .stringConvertible(runtimes.count), "upstreams": .stringConvertible(plan.configuration.upstreams.count),
        ])

        try? await gracefulShutdown()

        logger.info("stopping: no longer accepting, draining connections", metadata: [
            "drain_timeout_ms": .stringConvertible(plan.configuration.drainTimeout.wholeMilliseconds),
        ])
        for socket in sockets { await socket.close() }
        let deadline = ContinuousClock.now + plan.configuration.drainTimeout
        while runtimes.values.contains(where: { $0.activeConnections > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let remaining = runtimes.values.reduce(0) { $0 + $1.activeConnections }
        if remaining > 0 {
            logger.warning("drain_timeout reached; closing remaining connections", metadata: ["connections": .stringConvertible(remaining)])
        }
        try? await group.shutdownGracefully()
        logger.info("stopped")
    }
}

/// Failures that stop the agent from starting.
public enum AgentError: Error, CustomStringConvertible {
    case bindFailed(listener: String, address: SocketAddress, underlying: any Error)

    public var description: String {
        switch self {
        case .bindFailed(let listener, let address, let underlying):
            return "listener '\(listener)': cannot bind \(address.endpointDescription): \(underlying)"
        }
    }
}
