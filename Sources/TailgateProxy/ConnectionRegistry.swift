import NIOConcurrencyHelpers
import NIOCore

/// The client channels accepted on one socket, so that a drain can wait for them and, past its deadline, close them.
final class ConnectionRegistry: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLockedValue { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = self.channels.withLockedValue { $0.removeValue(forKey: key) }
        }
    }

    var count: Int { channels.withLockedValue { $0.count } }

    /// Closes every connection still open, logged with outcome `drain_timeout`.
    func closeAll() {
        let open = channels.withLockedValue { Array($0.values) }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(DrainDeadlineReached())
        }
    }
}

/// Sent through a connection's pipeline when its drain deadline passed: the connection is closed.
struct DrainDeadlineReached: Sendable {}
