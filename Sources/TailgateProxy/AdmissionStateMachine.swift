import NIOCore
import TailgateWire

/// Decides what to do with a new connection from its first bytes: an optional PROXY header
/// (required from trusted peers, never parsed from others), then the TLS ClientHello — on a plain TCP
/// listener nothing after the PROXY header (`ClientHelloInfo.none`).
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
        /// Route on this request head (an http listener); the buffer starts with it.
        case admitRequest(HTTPRequestHead)
        /// Answer the client with the error's status and close (an http listener).
        case refuseRequest(HTTPRequestHeadError)
        case reject(ConnectionOutcome, reason: String)
    }

    private(set) var state: State
    /// The PROXY header a trusted peer sent, once decoded.
    private(set) var proxyHeader: ProxyHeader?
    private var sniffedHandshakeHeader = false
    private let sniffer: ClientHelloSniffer
    private let decoder: ProxyHeaderDecoder
    /// A plain TCP listener: admitted once the PROXY header (if any) is in, without a ClientHello.
    private let plainTCP: Bool
    /// An http listener's request head reader; nil on tls and tcp listeners.
    private let requestParser: HTTPRequestHeadParser?

    init(
        expectProxyHeader: Bool, plainTCP: Bool = false, http: Bool = false, sniffer: ClientHelloSniffer = ClientHelloSniffer(),
        decoder: ProxyHeaderDecoder = ProxyHeaderDecoder()
    ) {
        self.state = expectProxyHeader ? .awaitingProxyHeader : plainTCP ? .decided : .awaitingClientHello
        self.sniffer = sniffer
        self.decoder = decoder
        self.plainTCP = plainTCP
        self.requestParser = http ? HTTPRequestHeadParser() : nil
    }

    /// Whether this admission reads an HTTP request (and answers its refusals with a status).
    var readsHTTP: Bool { requestParser != nil }

    /// A plain TCP connection without a PROXY header to wait for: admitted before anything is read.
    var admitsAtOnce: Bool {
        plainTCP && state == .decided && proxyHeader == nil
    }

    /// Looks at everything received so far; consumes a PROXY header when one completes.
    mutating func process(_ buffer: inout ByteBuffer) -> Action {
        if case .awaitingProxyHeader = state {
            do {
                guard let header = try decoder.decode(&buffer) else { return .needMoreData }
                proxyHeader = header
                if plainTCP {
                    state = .decided
                    return .admit(.none)
                }
                state = .awaitingClientHello
            } catch {
                state = .decided
                let reason = error == .notProxyProtocol ? "missing_proxy_header" : error.rawValue
                return .reject(.badProxyHeader, reason: reason)
            }
        }
        guard case .awaitingClientHello = state else { return .needMoreData }
        if let requestParser {
            do {
                guard let head = try requestParser.parse(buffer) else { return .needMoreData }
                state = .decided
                return .admitRequest(head)
            } catch {
                state = .decided
                return .refuseRequest(error)
            }
        }
        // Sniff once the handshake header is in (an oversized or wrong message is refused right away),
        // then only when a record completes.
        let headerJustArrived = !sniffedHandshakeHeader && buffer.readableBytes >= 9
        guard headerJustArrived || Self.endsOnRecordBoundary(buffer) else { return .needMoreData }
        if buffer.readableBytes >= 9 { sniffedHandshakeHeader = true }
        do {
            guard let info = try sniffer.sniff(buffer) else { return .needMoreData }
            state = .decided
            return .admit(info)
        } catch {
            state = .decided
            return .reject(.badClientHello, reason: error.rawValue)
        }
    }

    /// Whether the bytes so far end where a TLS record ends, or stop looking like TLS records at all.
    ///
    /// The sniffer parses from the start each time; calling it only when a record has completed keeps a
    /// client that dribbles a 16 KiB ClientHello byte by byte from costing n²/2 parsing steps. Anything that
    /// is not a plausible handshake record header goes to the sniffer at once, which rejects it.
    static func endsOnRecordBoundary(_ buffer: ByteBuffer) -> Bool {
        var offset = buffer.readerIndex
        let end = buffer.writerIndex
        while offset < end {
            guard buffer.getInteger(at: offset, as: UInt8.self) == 0x16 else { return true }
            if end - offset >= 2, buffer.getInteger(at: offset + 1, as: UInt8.self) != 0x03 { return true }
            guard end - offset >= 5 else { return false }
            guard let length = buffer.getInteger(at: offset + 3, as: UInt16.self), length <= 16_384 else { return true }
            offset += 5 + Int(length)
        }
        return offset == end
    }

    /// What the peer was doing when the client_hello_timeout fired, for the log.
    var timeoutReason: String {
        switch state {
        case .awaitingProxyHeader: return "waiting_for_proxy_header"
        case .awaitingClientHello, .decided: return readsHTTP ? "waiting_for_request_head" : "waiting_for_client_hello"
        }
    }
}

extension ClientHelloInfo {
    /// What a plain TCP connection is routed by: no server name, no ALPN.
    static let none = ClientHelloInfo(serverName: nil, alpn: [], legacyVersion: 0, byteCount: 0)
}
