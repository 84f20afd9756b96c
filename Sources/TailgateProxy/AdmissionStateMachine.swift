import NIOCore
import TailgateWire

/// Decides what to do with a new connection from its first bytes: an optional PROXY header
/// (required from trusted peers, never parsed from others), then the TLS ClientHello.
///
/// Pure: fed the accumulated bytes, it answers with an action; the handler does the I/O.
struct AdmissionStateMachine {
    enum State {
        case awaitingProxyHeader
        case awaitingClientHello
        case decided
    }

    enum Action: Equatable {
        case needMoreData
        /// Route on this ClientHello; the buffer now starts with it (any PROXY header consumed).
        case admit(ClientHelloInfo)
        case reject(ConnectionOutcome, reason: String)
    }

    private(set) var state: State
    /// The PROXY header a trusted peer sent, once decoded.
    private(set) var proxyHeader: ProxyHeader?
    private let sniffer: ClientHelloSniffer
    private let decoder: ProxyHeaderDecoder

    init(expectProxyHeader: Bool, sniffer: ClientHelloSniffer = ClientHelloSniffer(), decoder: ProxyHeaderDecoder = ProxyHeaderDecoder()) {
        self.state = expectProxyHeader ? .awaitingProxyHeader : .awaitingClientHello
        self.sniffer = sniffer
        self.decoder = decoder
    }

    /// Looks at everything received so far; consumes a PROXY header when one completes.
    mutating func process(_ buffer: inout ByteBuffer) -> Action {
        if case .awaitingProxyHeader = state {
            do {
                guard let header = try decoder.decode(&buffer) else { return .needMoreData }
                proxyHeader = header
                state = .awaitingClientHello
            } catch {
                state = .decided
                let reason = error == .notProxyProtocol ? "missing_proxy_header" : error.rawValue
                return .reject(.badProxyHeader, reason: reason)
            }
        }
        guard case .awaitingClientHello = state else { return .needMoreData }
        do {
            guard let info = try sniffer.sniff(buffer) else { return .needMoreData }
            state = .decided
            return .admit(info)
        } catch {
            state = .decided
            return .reject(.badClientHello, reason: error.rawValue)
        }
    }

    /// What the peer was doing when the client_hello_timeout fired, for the log.
    var timeoutReason: String {
        switch state {
        case .awaitingProxyHeader: return "waiting_for_proxy_header"
        case .awaitingClientHello, .decided: return "waiting_for_client_hello"
        }
    }
}
