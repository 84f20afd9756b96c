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
        NamedThread.startDetached(name: "crowdsec") { [self] in serve(desk: desk, board: board, logger: logger) }
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
        let response: PlainHTTPGet.Response
        do throws(PlainHTTPGet.Failure) {
            response = try PlainHTTPGet.get(
                PlainHTTPGet.Endpoint(configuration.url), path: "/v1/decisions/stream\(startup ? "?startup=true" : "")",
                headers: [("X-Api-Key", key), ("User-Agent", "tailgate/\(TailgateVersion.current)")],
                connectWithin: .seconds(30), answerWithin: .seconds(30), limit: 64 << 20
            )
        } catch {
            throw Problem(description: error.description)
        }
        let status = response.status, body = response.body
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
}
