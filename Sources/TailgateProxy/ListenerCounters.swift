import NIOConcurrencyHelpers
import Prometheus

/// The counters a listener's connections touch at accept and at their end, cached by label values so that
/// the per-connection path builds no label strings and hashes one short key.
final class ListenerCounters: Sendable {
    private struct EndedKey: Hashable {
        let route: String
        let outcome: ConnectionOutcome
    }

    let listener: String
    let accepted: Counter
    private let metrics: ProxyMetrics
    private let ended = NIOLockedValueBox<[EndedKey: Counter]>([:])
    private let relayed = NIOLockedValueBox<[String: RelayedCounters]>([:])

    struct RelayedCounters: Sendable {
        let fromClients: Counter
        let toClients: Counter
    }

    init(listener: String, metrics: ProxyMetrics) {
        self.listener = listener
        self.metrics = metrics
        self.accepted = metrics.counter(ProxyMetrics.Names.accepted, [("listener", listener)])
    }

    func ended(route: String, outcome: ConnectionOutcome) -> Counter {
        let key = EndedKey(route: route, outcome: outcome)
        return ended.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let made = metrics.counter(
                ProxyMetrics.Names.ended, [("listener", listener), ("route", route), ("outcome", outcome.rawValue)]
            )
            cache[key] = made
            return made
        }
    }

    func relayed(upstream: String) -> RelayedCounters {
        relayed.withLockedValue { cache in
            if let counters = cache[upstream] { return counters }
            let labels = [("listener", listener), ("upstream", upstream)]
            let made = RelayedCounters(
                fromClients: metrics.counter(ProxyMetrics.Names.bytes, labels + [("direction", "in")]),
                toClients: metrics.counter(ProxyMetrics.Names.bytes, labels + [("direction", "out")])
            )
            cache[upstream] = made
            return made
        }
    }
}
