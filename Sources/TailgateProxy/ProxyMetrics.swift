import NIOConcurrencyHelpers
import Prometheus

/// The proxy's Prometheus metrics. Handles are created once per label set and cached, so the
/// per-connection cost is a dictionary lookup and atomic increments.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let counters = NIOLockedValueBox<[String: Counter]>([:])
    private let histograms = NIOLockedValueBox<[String: DurationHistogram]>([:])

    /// False for a plan that is only checked (`tailgate check`): series are not created ahead of use. The
    /// registry adds each labelled series to its family in time linear in the family's size, so creating
    /// one per server made checking a file with 20,000 servers take a minute.
    private let createsSeriesAhead: Bool

    /// Stands in for every upstream's connect histogram when series are not created ahead (nothing connects).
    private let placeholderHistogram: DurationHistogram?

    public init(registry: PrometheusCollectorRegistry, createsSeriesAhead: Bool = true) {
        self.registry = registry
        self.createsSeriesAhead = createsSeriesAhead
        self.placeholderHistogram = createsSeriesAhead ? nil : registry.makeDurationHistogram(
            descriptor: Self.connectDescriptor, labels: [], buckets: Self.connectBuckets
        )
    }

    /// A counter for `descriptor` with `labels`, made on first use.
    public func counter(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)]) -> Counter {
        let key = descriptor.name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLockedValue { cache in
            if let existing = cache[key] { return existing }
            let made = registry.makeCounter(descriptor: descriptor, labels: labels)
            cache[key] = made
            return made
        }
    }

    static let connectBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
    ]

    static var connectDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "tailgate_upstream_connect_duration", unitName: "seconds", helpText: "Time to connect to an upstream server."
        )
    }

    func connectHistogram(upstream: String) -> DurationHistogram {
        if let placeholderHistogram { return placeholderHistogram }
        return histograms.withLockedValue { cache in
            if let existing = cache[upstream] { return existing }
            let made = registry.makeDurationHistogram(
                descriptor: Self.connectDescriptor, labels: [("upstream", upstream)], buckets: Self.connectBuckets
            )
            cache[upstream] = made
            return made
        }
    }

    /// Creates a listener's main series at zero, so dashboards and alerts see them before the first event.
    func initialize(listener: String) {
        guard createsSeriesAhead else { return }
        _ = counter(Names.accepted, [("listener", listener)])
        for reason in ["not_tls", "timeout"] {
            _ = counter(Names.sniffFailures, [("listener", listener), ("reason", reason)])
        }
        for reason in ["missing_proxy_header", "timeout"] {
            _ = counter(Names.proxyRejections, [("listener", listener), ("reason", reason)])
        }
    }

    /// Creates an upstream's per-server failure series at zero.
    func initialize(upstream: String, servers: [String]) {
        guard createsSeriesAhead else { return }
        for server in servers {
            _ = counter(Names.connectFailures, [("upstream", upstream), ("server", server)])
        }
    }


    /// Everything counted when a connection ends.
    func ended(_ record: ConnectionRecord, outcome: ConnectionOutcome) {
        let listener = record.listener.name
        let counters = record.listener.counters
        counters.ended(route: record.route ?? "none", outcome: outcome).increment()
        // Only routed connections relayed anything: what a refused client sent went nowhere.
        if let upstream = record.upstream, record.bytesFromClient > 0 || record.bytesFromServer > 0 {
            let relayed = counters.relayed(upstream: upstream)
            if record.bytesFromClient > 0 { relayed.fromClients.increment(by: Int64(record.bytesFromClient)) }
            if record.bytesFromServer > 0 { relayed.toClients.increment(by: Int64(record.bytesFromServer)) }
        }
        let reason = record.detail ?? "unknown"
        switch outcome {
        case .badClientHello:
            counter(Names.sniffFailures, [("listener", listener), ("reason", reason)]).increment()
        case .clientHelloTimeout:
            let name = reason == "waiting_for_proxy_header" ? Names.proxyRejections : Names.sniffFailures
            counter(name, [("listener", listener), ("reason", "timeout")]).increment()
        case .badProxyHeader:
            counter(Names.proxyRejections, [("listener", listener), ("reason", reason)]).increment()
        default:
            break
        }
    }

    /// A connection refused for its source's limit (`limit`: `connections` or `rate`).
    func overSourceLimit(listener: String, limit: String, beforeRoute: Bool) {
        counter(Names.sourceRefusals, [("listener", listener), ("limit", limit)]).increment()
        if beforeRoute {
            counter(Names.ended, [("listener", listener), ("route", "none"), ("outcome", ConnectionOutcome.overSourceLimit.rawValue)]).increment()
        }
    }

    /// A connection let in without being counted per source: its group of the table was full.
    func sourceUntracked(listener: String) {
        counter(Names.sourceUntracked, [("listener", listener)]).increment()
    }

    func overLimit(listener: String) {
        counter(Names.ended, [("listener", listener), ("route", "none"), ("outcome", ConnectionOutcome.overLimit.rawValue)]).increment()
    }

    func connectFailed(upstream: String, server: String) {
        counter(Names.connectFailures, [("upstream", upstream), ("server", server)]).increment()
    }

    /// The proxy's metric names and help texts.
    public enum Names {
        static func total(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "total", helpText: help)
        }
        static var accepted: MetricNameDescriptor { total("tailgate_connections_accepted", "Connections accepted, by listener.") }
        static var ended: MetricNameDescriptor { total("tailgate_connections_ended", "Connections ended, by listener, route and outcome.") }
        static var bytes: MetricNameDescriptor {
            MetricNameDescriptor(metricName: "tailgate_relayed", unitName: "bytes_total", helpText: "Bytes relayed: in = from clients, out = to clients.")
        }
        static var sniffFailures: MetricNameDescriptor { total("tailgate_client_hello_failures", "Connections closed because no usable ClientHello arrived, by reason.") }
        static var proxyRejections: MetricNameDescriptor { total("tailgate_proxy_header_rejections", "Trusted peers refused for a missing or bad PROXY header, by reason.") }
        static var sourceRefusals: MetricNameDescriptor {
            total("tailgate_source_limit_refusals", "Connections closed because their client source was over a per-source limit, by listener and limit.")
        }
        static var sourceUntracked: MetricNameDescriptor {
            total("tailgate_source_limit_untracked", "Connections let in without a per-source count because the listener's source table had no room.")
        }
        static var connectFailures: MetricNameDescriptor { total("tailgate_upstream_connect_failures", "Failed connects to upstream servers.") }
    }
}
