import NIOConcurrencyHelpers

/// A connection the drain can close once its deadline has passed.
protocol TrackedConnection: AnyObject, Sendable {
    /// Closes the connection, logged with outcome `drain_timeout`.
    func closeAtDrainDeadline()
}

/// The connections accepted on one socket, from accept to close, so that a drain can wait for them and,
/// past its deadline, close them.
final class ConnectionRegistry: Sendable {
    private let entries = NIOLockedValueBox<[ObjectIdentifier: any TrackedConnection]>([:])

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
