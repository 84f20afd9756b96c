import Logging
import NIOCore
import NIOPosix
import TailgateConfig
import TailgateProxy
import TailgateTOML

/// The listening sockets and listener runtimes, diffed by bind address on every reload:
/// an unchanged bind keeps its socket, an added one is opened, a removed one stops accepting
/// and its connections finish on their own, bounded by drain_timeout.
actor ListenerSet: ReloadStep {
    nonisolated let name = "listeners"
    private let relay: SpliceRelayEngine
    private let logger: Logger
    private var runtimes: [String: ListenerRuntime] = [:]
    private var sockets: [SocketAddress: BoundSocket] = [:]
    /// Removed sockets whose connections are still finishing.
    private var draining: [ObjectIdentifier: BoundSocket] = [:]

    private let metrics: ProxyMetrics
    private let budget: ConnectionBudget
    private let banBoard: BanBoard?
    /// Sockets passed in at start (systemd's store, or the tailgate this one took over from).
    private let inherited: InheritedSockets
    private let store: SocketStore

    init(
        relay: SpliceRelayEngine, logger: Logger, metrics: ProxyMetrics, budget: ConnectionBudget,
        inherited: InheritedSockets = InheritedSockets(), store: SocketStore = SocketStore(notifier: SystemdNotifier(environment: nil)),
        banBoard: BanBoard? = nil
    ) {
        self.banBoard = banBoard
        self.inherited = inherited
        self.store = store
        self.budget = budget
        self.relay = relay
        self.logger = logger
        self.metrics = metrics
    }

    /// Listener runtimes by name, for status and drain.
    var listeners: [String: ListenerRuntime] { runtimes }

    /// The runtimes of listeners a reload removed whose connections are still open, by name (for /metrics).
    var removedListenersInUse: [String: ListenerRuntime] {
        var result: [String: ListenerRuntime] = [:]
        for socket in draining.values where runtimes[socket.listener.name] == nil && socket.openConnections > 0 {
            result[socket.listener.name] = socket.listener
        }
        return result
    }

    /// Bound addresses by listener name.
    var bindsByListener: [String: [SocketAddress]] {
        var result: [String: [SocketAddress]] = [:]
        for (address, socket) in sockets { result[socket.listener.name, default: []].append(address) }
        return result
    }

    var openConnections: Int {
        sockets.values.reduce(0) { $0 + $1.openConnections } + draining.values.reduce(0) { $0 + $1.openConnections }
    }

    func prepare(_ plan: ProxyPlan) async throws -> PreparedStep {
        var nextRuntimes: [String: ListenerRuntime] = [:]
        var publish: [(ListenerRuntime, ListenerPolicy)] = []
        var desired: [SocketAddress: String] = [:]
        var written: [SocketAddress: (position: SourcePosition, keyPath: String)] = [:]
        for listener in plan.configuration.listeners {
            guard let policy = plan.policies[listener.name] else { continue }
            if let existing = runtimes[listener.name] {
                nextRuntimes[listener.name] = existing
                publish.append((existing, policy))
            } else {
                nextRuntimes[listener.name] = ListenerRuntime(policy: policy, metrics: metrics, budget: budget, banBoard: banBoard)
            }
            for (index, bind) in listener.binds.enumerated() {
                desired[bind.value] = listener.name
                written[bind.value] = (bind.position, "listeners.\(listener.name).bind[\(index)]")
            }
        }
        var opened: [BoundSocket] = []
        // Sockets opened beside an overlapping one that this reload closes, and those they overlap.
        var sharing: [BoundSocket] = [], leaving: [BoundSocket] = []
        for (address, listenerName) in desired.sorted(by: { $0.value < $1.value }) where sockets[address] == nil {
            guard let runtime = nextRuntimes[listenerName] else { continue }
            if let descriptor = inherited.take(.listener, address) {
                opened.append(BoundSocket.adopt(descriptor, address: address, listener: runtime, relay: relay, logger: logger))
                continue
            }
            do {
                opened.append(try BoundSocket.bind(address, listener: runtime, relay: relay, logger: logger))
            } catch {
                // 127.0.0.1:443 becoming 0.0.0.0:443 (or back): the old socket holds the port until the commit
                // closes it. Both may listen meanwhile with SO_REUSEPORT, taken off again after the commit.
                let overlapped = sockets.filter { desired[$0.key] == nil && Self.overlap($0.key, address) }.map(\.value)
                if !overlapped.isEmpty, let socket = bindBeside(overlapped, address, runtime) {
                    opened.append(socket)
                    sharing.append(socket)
                    leaving.append(contentsOf: overlapped)
                    continue
                }
                for socket in leaving { socket.forbidSharing() }
                for socket in opened { await socket.close() }
                let entry = written[address] ?? (SourcePosition(line: 1, column: 1), "listeners.\(listenerName).bind")
                throw AgentError.bindFailed(
                    listener: listenerName, address: address, position: entry.position, keyPath: entry.keyPath, underlying: error
                )
            }
        }
        let drainTimeout = plan.configuration.drainTimeout
        return PreparedStep(
            commit: { [opened, publish, desired, nextRuntimes, sharing] in
                await self.commit(runtimes: nextRuntimes, publish: publish, desired: desired, opened: opened, drainTimeout: drainTimeout)
                for socket in sharing { socket.forbidSharing() }
            },
            rollback: { [opened, leaving] in
                for socket in opened { await socket.close() }
                for socket in leaving { socket.forbidSharing() }
            }
        )
    }

    /// Gives the listeners `plan`'s policies for new connections (names resolved anew; binds unchanged).
    func publish(_ plan: ProxyPlan) {
        for (name, runtime) in runtimes {
            if let policy = plan.policies[name] { runtime.publish(policy) }
        }
    }

    /// Whether two different bind addresses take the same port: same family and port, one a wildcard.
    static func overlap(_ a: SocketAddress, _ b: SocketAddress) -> Bool {
        guard a.protocol == b.protocol, a.port == b.port else { return false }
        let wildcards: Set<String> = ["0.0.0.0", "::"]
        return wildcards.contains(a.ipAddress ?? "") || wildcards.contains(b.ipAddress ?? "")
    }

    /// Binds `address` with SO_REUSEPORT beside the overlapping sockets about to close; nil (and the
    /// sockets as they were) when even that fails.
    private func bindBeside(_ overlapped: [BoundSocket], _ address: SocketAddress, _ runtime: ListenerRuntime) -> BoundSocket? {
        do {
            for socket in overlapped { try socket.allowSharing() }
            return try BoundSocket.bind(address, listener: runtime, relay: relay, logger: logger, sharing: true)
        } catch {
            for socket in overlapped { socket.forbidSharing() }
            return nil
        }
    }

    private func commit(
        runtimes nextRuntimes: [String: ListenerRuntime], publish: [(ListenerRuntime, ListenerPolicy)],
        desired: [SocketAddress: String], opened: [BoundSocket], drainTimeout: Duration
    ) async {
        for (runtime, policy) in publish { runtime.publish(policy) }
        for (address, listenerName) in desired {
            if let socket = sockets[address], let runtime = nextRuntimes[listenerName], socket.listener !== runtime {
                // The bind moved to another listener: keep the socket, switch whose policy it serves.
                socket.listener = runtime
            }
        }
        for socket in opened {
            sockets[socket.address] = socket
            logger.info("listening", metadata: ["listener": .string(socket.listener.name), "bind": .string(socket.address.endpointDescription)])
            if let descriptor = socket.descriptor { store.keep(.listener, socket.address, descriptor) }
        }
        let deadline = ContinuousClock.now + drainTimeout
        // A bind removed by an earlier reload and configured again: its connections need not be cut at
        // drain_timeout; removed once more, they are again.
        for socket in draining.values {
            let wanted = desired[socket.address] != nil
            guard wanted != socket.isReprieved else { continue }
            let metadata: Logger.Metadata = [
                "bind": .string(socket.address.endpointDescription), "connections": .stringConvertible(socket.openConnections),
            ]
            if wanted {
                socket.reprieve()
                logger.info("bind configured again; its connections from before are no longer bound by drain_timeout", metadata: metadata)
            } else {
                socket.drainAgain(until: deadline)
                logger.info("bind removed again; its connections from before may finish within drain_timeout", metadata: metadata)
            }
        }
        for (address, socket) in sockets where desired[address] == nil {
            sockets[address] = nil
            store.forget(.listener, address)
            await socket.close()
            logger.info("stopped listening; open connections may finish", metadata: [
                "bind": .string(address.endpointDescription), "connections": .stringConvertible(socket.openConnections),
            ])
            let key = ObjectIdentifier(socket)
            // Set here, not in the task: a reprieve by the next reload must not be undone by a late start.
            socket.drainAgain(until: deadline)
            draining[key] = socket
            Task {
                let closed = await socket.drain()
                self.finishedDraining(key, closed: closed, address: address)
            }
        }
        runtimes = nextRuntimes
    }

    private func finishedDraining(_ key: ObjectIdentifier, closed: Int, address: SocketAddress) {
        guard draining.removeValue(forKey: key) != nil else { return }
        if closed > 0 {
            logger.warning("drain_timeout reached on a removed bind; closed its remaining connections", metadata: [
                "bind": .string(address.endpointDescription), "connections": .stringConvertible(closed),
            ])
        }
    }

    /// Closes the sockets passed in at start that no listener claimed (the configuration no longer names
    /// their binds), so that exactly the configured ones are open; they leave the store too. Returns how many.
    @discardableResult
    func closeUnclaimedInherited() -> Int {
        let unclaimed = inherited.closeUnclaimed(.listener)
        for socket in unclaimed {
            store.forget(socket.name)
            logger.info("closed a listening socket passed in that the configuration no longer names", metadata: [
                "bind": .string(socket.address.endpointDescription), "name": .string(socket.name),
            ])
        }
        return unclaimed.count
    }

    /// The open listening sockets with their store names (for an upgrade hand-over).
    var handOverSockets: [(name: String, descriptor: CInt)] {
        sockets.compactMap { address, socket in socket.descriptor.map { (InheritedSockets.name(.listener, address), $0) } }
    }

    /// Stops accepting everywhere (shutdown).
    func closeAll() async {
        for socket in sockets.values { await socket.close() }
    }

    /// Closes every connection still open (drain deadline or a second SIGTERM).
    func closeConnections() {
        for socket in sockets.values { socket.closeConnections() }
        for socket in draining.values { socket.closeConnections() }
    }
}
