import Logging
import NIOCore
import TailgateConfig

extension ListenerRuntime {
    /// What `judgeSource` decided.
    enum SourceJudgement {
        /// Let in; `counted` is the table and source to give the connection back to when it ends.
        case admitted(counted: (tracker: SourceTracker, key: SourceKey)?)
        /// Refused; `limit` is `connections` or `rate` (the log's reason and the metric's label).
        case refused(limit: String)
    }

    /// Counts a new connection from `client` against the listener's per-source limits, or refuses it. A
    /// refusal is counted and logged as a warning, at most once a minute per source and twenty times a
    /// second per listener, so a flood cannot flood the log. `beforeRoute`: refused at accept (no connection
    /// line follows; the ended counter says `over_source_limit` here).
    func judgeSource(
        _ client: SocketAddress?, limits: SourceLimits, tracker: SourceTracker, now: NIODeadline, logger: Logger, beforeRoute: Bool
    ) -> SourceJudgement {
        guard let address = client.flatMap(IPAddress.init) else { return .admitted(counted: nil) }
        let key = SourceKey(address, ipv4Prefix: limits.ipv4Prefix, ipv6Prefix: limits.ipv6Prefix)
        let nanoseconds = Int64(now.uptimeNanoseconds)
        let limit: String
        var metadata: Logger.Metadata = ["listener": .string(name), "source": .stringConvertible(key)]
        switch tracker.admit(key, limits: limits, now: nanoseconds) {
        case .admitted(let key):
            return .admitted(counted: (tracker, key))
        case .untracked:
            metrics.sourceUntracked(listener: name)
            return .admitted(counted: nil)
        case .overConnections(_, let open):
            limit = "connections"
            metadata["open"] = .stringConvertible(open)
            metadata["max_connections_per_source"] = .stringConvertible(limits.maxConnections ?? 0)
        case .overRate:
            limit = "rate"
            if let rate = limits.rate {
                metadata["connection_rate_per_source"] = .string("\(rate.count)/\(rate.window.wholeMilliseconds / 1_000)s")
            }
        }
        countSourceRefusal()
        metrics.overSourceLimit(listener: name, limit: limit, beforeRoute: beforeRoute)
        noteOffense(.overSourceLimit, client: client, now: now)
        if tracker.shouldWarn(key, now: nanoseconds), shouldWarnSourceLimit(now: nanoseconds) {
            let what = limit == "rate" ? "connection_rate_per_source" : "max_connections_per_source"
            logger.warning("client source is over \(what); closing its new connections (logged at most once a minute per source)", metadata: metadata)
        }
        return .refused(limit: limit)
    }
}

extension ListenerRuntime {
    /// Counts an offense of `client` against the policy's `ban` rule; when it trips, the source (an address,
    /// or its IPv6 prefix) is asked to be banned. A trusted PROXY peer is never counted (it carries everyone);
    /// nor is a client without an address.
    func noteOffense(_ offense: BanRule.Offense, client: SocketAddress?, now: NIODeadline) {
        guard let board = banBoard, let tracker = offenses else { return }
        let policy = self.policy
        guard let rule = policy.banRule, rule.offenses.contains(offense), let address = client.flatMap(IPAddress.init) else { return }
        if policy.trusts(client) { return }
        let key = SourceKey(address, ipv4Prefix: policy.sourceLimits.ipv4Prefix, ipv6Prefix: policy.sourceLimits.ipv6Prefix)
        guard let tripped = tracker.offend(key, rule: rule, now: Int64(now.uptimeNanoseconds)) else { return }
        board.request(BanBoard.Request(
            source: key, duration: tripped.length, comment: "tailgate: listener \(name): \(offense.rawValue) x\(tripped.count)"
        ))
    }
}
