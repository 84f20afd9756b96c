import Logging
import NIOCore
import TailgateConfig
import TailgateWire

/// Everything the connection log line says, gathered by the connection's session on its relay thread and
/// written once, when the session closes.
final class ConnectionRecord {
    let listener: ListenerRuntime
    let logger: Logger
    /// Writes the connection line without a metadata dictionary when the handler can (see `ConnectionLineWriter`).
    let lineWriter: (any ConnectionLineWriter)?
    let started: NIODeadline
    /// The socket peer.
    let peer: SocketAddress?
    /// The client as far as we know: the PROXY header's source when a trusted peer sent one.
    var client: SocketAddress?
    var serverName: String?
    var alpn: [String] = []
    var upstream: String?
    /// The route that matched: the SNI for an exact route, the wildcard pattern, "default" or "none" (metrics label).
    var route: String?
    var server: SocketAddress?
    /// Set once the upstream connection is up; released when the pair closes.
    var connectedServer: (address: SocketAddress, usage: ServerUsage)?
    var bytesFromClient = 0
    var bytesFromServer = 0
    /// A probe (connected, sent nothing but perhaps a PROXY header, left): logged at debug level only.
    var quiet = false
    /// The listener's per-source table as of the accept, when it limits sources and the client is not known
    /// yet (a trusted peer's PROXY header will name it).
    var sourceTracker: SourceTracker?
    /// Where this connection is counted per source, given back when it ends.
    var sourceCount: (tracker: SourceTracker, key: SourceKey)?
    private(set) var outcome: ConnectionOutcome?
    private(set) var detail: String?
    private var finished = false

    init(listener: ListenerRuntime, logger: Logger, lineWriter: (any ConnectionLineWriter)? = nil, peer: SocketAddress?) {
        self.listener = listener
        self.logger = logger
        self.lineWriter = lineWriter
        self.started = .now()
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; log them as IPv4.
        self.peer = peer?.unmappingIPv4()
        self.client = self.peer
    }

    /// Takes the client's address from a trusted peer's PROXY header: a PROXY command that carries addresses
    /// (with LOCAL, or an address family without them, the socket's peer stays the client). Called as soon as
    /// the admission has read the header, so that a connection failing after it is logged with the real client.
    func adoptSource(of header: ProxyHeader?) {
        if let header, header.command == .proxy, let source = header.source {
            client = source
        }
    }

    /// Records why the connection ends; the first reason given wins.
    func end(_ outcome: ConnectionOutcome, detail: String? = nil) {
        guard self.outcome == nil else { return }
        self.outcome = outcome
        self.detail = detail
    }

    /// The offense a `ban` rule counts for an outcome, if any.
    static func offense(_ outcome: ConnectionOutcome) -> BanRule.Offense? {
        switch outcome {
        case .badClientHello: return .notTLS
        case .clientHelloTimeout, .requestTimeout: return .helloTimeout
        case .denied: return .denied
        case .badRequest: return .badRequest
        default: return nil
        }
    }

    /// Releases the connection's slots, counts it and writes its log line (once).
    func finish() {
        guard !finished else { return }
        finished = true
        let outcome = self.outcome ?? .closed
        listener.release()
        if let sourceCount { sourceCount.tracker.release(sourceCount.key) }
        if let connectedServer { connectedServer.usage.release(connectedServer.address, bytes: bytesFromClient + bytesFromServer) }
        listener.metrics.ended(self, outcome: outcome)
        if let offense = Self.offense(outcome) { listener.noteOffense(offense, client: client, now: .now()) }
        // A peer that connects and leaves without a byte (a port scan, a load balancer's TCP check)
        // is counted but logged only at debug level, so probes cannot flood the log; so is a client refused
        // for its source's limits (a warning names the source once a minute).
        let level: Logger.Level = quiet && (outcome == .clientClosedEarly || outcome == .overSourceLimit || outcome == .banned) ? .debug : .info
        listener.tally.ended(
            outcome, logged: level == .info, client: client, serverName: serverName, reason: detail
        )
        guard logger.logLevel <= level else { return }
        let line = ConnectionLogLine(
            listener: listener.name, client: client, peer: peer != client ? peer : nil, serverName: serverName, alpn: alpn,
            upstream: upstream, server: server, bytesIn: bytesFromClient, bytesOut: bytesFromServer,
            durationMilliseconds: (NIODeadline.now() - started).nanoseconds / 1_000_000, outcome: outcome, reason: detail
        )
        if let lineWriter {
            lineWriter.writeConnectionLine(line, level: level)
        } else {
            logger.log(level: level, "connection", metadata: line.metadata)
        }
    }
}
