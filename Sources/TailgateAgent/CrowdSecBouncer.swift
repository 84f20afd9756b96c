import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TailgateConfig
import TailgateProxy
import TailgateSystem
import TailgateWire

/// tailgate as a CrowdSec bouncer (`[bans.crowdsec]`): pulls the Local API's decisions stream
/// (`GET /v1/decisions/stream`, the whole list once with `startup=true`, then what changed) every
/// `pull_interval`, and writes `ban` decisions for addresses and ranges into the same kernel ban sets as
/// every other ban (their time left as the duration, `crowdsec: SCENARIO` as the comment); a decision
/// CrowdSec deletes or expires lifts the ban, if it is still CrowdSec's. Runs on a thread of its own.
final class CrowdSecBouncer: Sendable {
    private let configuration = NIOLockedValueBox<CrowdSecConfiguration?>(nil)
    /// What the last pull did, for the log (said when it changes) and /status.
    private let state = NIOLockedValueBox(State())

    struct State: Sendable {
        var lastResult = "not pulled yet"
        var pulls = 0
        var bansAdded = 0
        var bansLifted = 0
    }

    var snapshot: State { state.withLockedValue { $0 } }

    /// Takes a (re)loaded configuration; the next pull uses it. A changed URL or key starts over from
    /// `startup=true`.
    func configure(_ crowdsec: CrowdSecConfiguration?) {
        configuration.withLockedValue { $0 = crowdsec }
    }

    func start(desk: BanDesk, board: BanBoard, logger: Logger) {
        DetachedThread.start(name: "crowdsec") { [self] in serve(desk: desk, board: board, logger: logger) }
    }

    private func serve(desk: BanDesk, board: BanBoard, logger: Logger) {
        var pulledFrom: CrowdSecConfiguration?
        var lastProblem: String?
        while true {
            guard let current = configuration.withLockedValue({ $0 }) else {
                usleep(1_000_000)
                pulledFrom = nil
                continue
            }
            let startup = pulledFrom != current
            do throws(Problem) {
                let decisions = try Self.pull(current, startup: startup)
                pulledFrom = current
                let (added, lifted) = apply(decisions, desk: desk, logger: logger)
                desk.refresh(board)
                state.withLockedValue {
                    $0.pulls += 1
                    $0.bansAdded += added
                    $0.bansLifted += lifted
                    $0.lastResult = "ok"
                }
                if lastProblem != nil {
                    logger.info("crowdsec: pulling decisions again", metadata: ["url": .string(current.url)])
                    lastProblem = nil
                }
                if startup || added + lifted > 0 {
                    logger.info("crowdsec: decisions pulled", metadata: [
                        "url": .string(current.url), "bans_added": .stringConvertible(added), "bans_lifted": .stringConvertible(lifted),
                        "startup": .stringConvertible(startup),
                    ])
                }
            } catch {
                state.withLockedValue { $0.lastResult = error.description }
                if lastProblem != error.description {
                    logger.warning("crowdsec: cannot pull decisions; trying again every pull_interval", metadata: [
                        "url": .string(current.url), "error": .string(error.description),
                    ])
                    lastProblem = error.description
                }
            }
            usleep(UInt32(clamping: max(1, current.pullInterval.wholeMilliseconds) * 1_000))
        }
    }

    /// Writes new `ban` decisions of scope Ip or Range, lifts deleted ones that are CrowdSec's.
    private func apply(_ decisions: CrowdSecDecisions, desk: BanDesk, logger: Logger) -> (added: Int, lifted: Int) {
        var added = 0, lifted = 0, refused = 0
        var firstRefusal: String?
        for decision in decisions.deleted where Self.isBan(decision) {
            if (try? desk.lift(decision.value, by: "crowdsec", onlyIfCommentStartsWith: "crowdsec:")) != nil { lifted += 1 }
        }
        for decision in decisions.new where Self.isBan(decision) {
            guard let duration = decision.duration, duration >= .seconds(1) else { continue }
            do {
                _ = try desk.ban(decision.value, for: duration, comment: "crowdsec: \(decision.scenario)")
                added += 1
            } catch {
                refused += 1
                if firstRefusal == nil { firstRefusal = "\(decision.value): \(error)" }
            }
        }
        if let firstRefusal {
            logger.warning("crowdsec: decisions not applied", metadata: ["count": .stringConvertible(refused), "first": .string(firstRefusal)])
        }
        return (added, lifted)
    }

    private static func isBan(_ decision: CrowdSecDecisions.Decision) -> Bool {
        decision.type == "ban" && (decision.scope.lowercased() == "ip" || decision.scope.lowercased() == "range")
    }

    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// One pull: a plain HTTP/1.1 GET with the bouncer's key, the body read whole (at most 64 MiB) within 30 s.
    static func pull(_ configuration: CrowdSecConfiguration, startup: Bool) throws(Problem) -> CrowdSecDecisions {
        let key: String
        do {
            let bytes = try ConfigurationFile.readAll(configuration.apiKeyFile)
            let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
            key = String(decoding: bytes.drop(while: isSpace).reversed().drop(while: isSpace).reversed(), as: UTF8.self)
        } catch {
            throw Problem(description: "cannot read api_key_file \(configuration.apiKeyFile): \(error)")
        }
        guard !key.isEmpty, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw Problem(description: "api_key_file \(configuration.apiKeyFile) holds no usable key") }
        let rest = configuration.url.dropFirst("http://".count)
        let authority = String(rest.prefix { $0 != "/" })
        let base = String(rest.dropFirst(authority.count)).trimmingSuffix("/")
        var host = authority, port = 80
        if let colon = authority.lastIndex(of: ":"), let parsed = Int(authority[authority.index(after: colon)...]) {
            host = String(authority[..<colon]).trimmingCharacters(in: "[]")
            port = parsed
        }
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw Problem(description: "cannot resolve \(host): \(error)")
        }
        let deadline = NIODeadline.now() + .seconds(30)
        let descriptor: CInt
        do {
            descriptor = try OutgoingConnection.connect(to: address, deadline: deadline)
        } catch {
            throw Problem(description: "\(configuration.url): \(error)")
        }
        defer { Glibc.close(descriptor) }
        let request = "GET \(base)/v1/decisions/stream\(startup ? "?startup=true" : "") HTTP/1.1\r\nHost: \(authority)\r\n"
            + "X-Api-Key: \(key)\r\nUser-Agent: tailgate/\(TailgateVersion.current)\r\nConnection: close\r\n\r\n"
        var bytes = Array(request.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 { bytes = bytes.dropFirst(sent); continue }
            if sent < 0, errno == EAGAIN, (try? OutgoingConnection.wait(descriptor, for: Int16(POLLOUT), until: deadline)) != nil { continue }
            throw Problem(description: "\(configuration.url): \(SystemCallError("send"))")
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while response.count < 64 << 20 {
            let received = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received > 0 { response += chunk[0..<received]; continue }
            if received == 0 { break }
            guard errno == EAGAIN, (try? OutgoingConnection.wait(descriptor, for: Int16(POLLIN), until: deadline)) != nil else {
                throw Problem(description: "\(configuration.url): reading the answer: \(SystemCallError("recv"))")
            }
        }
        let (status, body) = try Self.split(response, url: configuration.url)
        guard status == 200 else {
            let hint = status == 403 ? " (the API key is refused: add the bouncer with `cscli bouncers add` and put its key in api_key_file)" : ""
            throw Problem(description: "\(configuration.url) answered HTTP \(status)\(hint)")
        }
        do {
            return try CrowdSecDecisions.parse(body)
        } catch {
            throw Problem(description: "\(configuration.url): \(error)")
        }
    }

    /// The status code and the body (de-chunked when `Transfer-Encoding: chunked`).
    static func split(_ response: [UInt8], url: String) throws(Problem) -> (Int, [UInt8]) {
        guard let end = response.indices.dropLast(3).first(where: { response[$0] == 13 && response[$0 + 1] == 10 && response[$0 + 2] == 13 && response[$0 + 3] == 10 }) else {
            throw Problem(description: "\(url): no complete HTTP answer")
        }
        let head = String(decoding: response[..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { throw Problem(description: "\(url): not an HTTP answer") }
        var body = Array(response[(end + 4)...])
        let chunked = lines.dropFirst().contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        if chunked {
            var decoded: [UInt8] = []
            var rest = body[...]
            while let lineEnd = rest.indices.dropLast().first(where: { rest[$0] == 13 && rest[$0 + 1] == 10 }) {
                let sizeText = String(decoding: rest[rest.startIndex..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(String(sizeText).trimmingCharacters(in: " "), radix: 16), size >= 0 else { throw Problem(description: "\(url): bad chunked body") }
                if size == 0 { break }
                let start = lineEnd + 2
                guard start + size <= rest.endIndex else { throw Problem(description: "\(url): truncated chunked body") }
                decoded += rest[start..<(start + size)]
                rest = rest[min(rest.endIndex, start + size + 2)...]
            }
            body = decoded
        }
        return (status, body)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var view = Substring(self)
        while let first = view.first, set.contains(first) { view.removeFirst() }
        while let last = view.last, set.contains(last) { view.removeLast() }
        return String(view)
    }

    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
