import NIOConcurrencyHelpers
import NIOCore

/// A connection the drain can close once its deadline has passed.
protocol TrackedConnection: AnyObject, Sendable {
    /// Closes the connection, logged with outcome `drain_timeout`.
    func closeAtDrainDeadline()
}

/// The connections accepted on one socket (still in admission, relayed by NIO, or handed to the splice
/// engine), so that a drain can wait for them and, past its deadline, close them.
final class ConnectionRegistry: Sendable {
    private let entries = NIOLockedValueBox<[ObjectIdentifier: any TrackedConnection]>([:])

    /// Tracks an accepted channel until it closes.
    func add(_ channel: any Channel) {
        let connection = ChannelConnection(channel: channel)
        add(connection)
        channel.closeFuture.whenComplete { [self] _ in
            self.remove(connection)
        }
    }

    func add(_ connection: any TrackedConnection) {
        entries.withLockedValue { $0[ObjectIdentifier(connection)] = connection }
    }

    func remove(_ connection: any TrackedConnection) {
        _ = entries.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    var count: Int { entries.withLockedValue { $0.count } }

    /// Closes every connection still open, logged with outcome `drain_timeout`.
    func closeAll() {
        let open = entries.withLockedValue { Array($0.values) }
        for connection in open {
            connection.closeAtDrainDeadline()
        }
    }
}

/// A channel still owned by NIO.
private final class ChannelConnection: TrackedConnection {
    let channel: any Channel

    init(channel: any Channel) {
        self.channel = channel
    }

    func closeAtDrainDeadline() {
        channel.pipeline.fireUserInboundEventTriggered(DrainDeadlineReached())
    }
}

/// Sent through a connection's pipeline when its drain deadline passed: the connection is closed.
struct DrainDeadlineReached: Sendable {}
