import Glibc
import Logging
import NIOConcurrencyHelpers
import TailgateConfig
import TailgateFirewall
import TailgateProxy

/// Bans asked for from outside (`tailgate ban`, fail2ban's action, later CrowdSec): checked against who is
/// never banned, bounded, and written to the kernel's ban sets. The kernel is the record: the sets hold each
/// ban's time left and its comment (who asked and why), so a restart loses nothing and nothing here needs
/// saving.
final class BanDesk: Sendable {
    struct Settings: Sendable {
        var enabled = false
        var never = AddressSet()
        var defaultDuration: Duration = .seconds(3_600)
        var maxDuration: Duration = .seconds(30 * 86_400)
        var capacity = 65_536
    }

    let kernel: NetlinkFirewall
    private let logger: Logger
    let settings = NIOLockedValueBox(Settings())
    /// One change at a time (a read of the sets, then a batch).
    private let changes = NIOLock()
    private let count = NIOLockedValueBox<Int?>(nil)

    init(kernel: NetlinkFirewall = NetlinkFirewall(), logger: Logger) {
        self.kernel = kernel
        self.logger = logger
    }

    /// Takes the `[bans]` table and who is never banned from an applied configuration.
    func configure(_ configuration: TailgateConfiguration) {
        settings.withLockedValue {
            $0 = Settings(
                enabled: configuration.bans.enabled, never: configuration.neverBanned, defaultDuration: configuration.bans.defaultDuration,
                maxDuration: configuration.bans.maxDuration, capacity: configuration.bans.capacity
            )
        }
    }

    /// A refusal, as the reply says it.
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// Bans `text` (an address or prefix) for `duration` (nil: the default); `comment` says who asked and why.
    /// Returns the reply's text; a ban already there is given again (its time starts over).
    func ban(_ text: String, for duration: Duration?, comment: String) throws(Refusal) -> String {
        let settings = self.settings.withLockedValue { $0 }
        guard settings.enabled else { throw Refusal(description: "bans are not enabled ([bans] enabled = true)") }
        let network: IPNetwork
        switch IPNetwork.parsing(text) {
        case .success(let parsed): network = parsed
        case .failure(let error): throw Refusal(description: error.text)
        }
        let shortest = network.address.family == .v4 ? BanConfiguration.shortestIPv4Prefix : BanConfiguration.shortestIPv6Prefix
        guard network.prefixLength >= shortest else {
            throw Refusal(description: "\(network) is wider than a /\(shortest); a ban that wide is refused")
        }
        guard !settings.never.intersects(AddressSet([network])) else {
            throw Refusal(description: "\(network.compactDescription) is never banned: it is or covers loopback, the tailnet, a PROXY peer, an address an allow list admits, or [bans] never")
        }
        var length = duration ?? settings.defaultDuration
        guard length >= .seconds(1) else { throw Refusal(description: "a ban lasts at least 1s") }
        var note = ""
        if length > settings.maxDuration {
            length = settings.maxDuration
            note = " (shortened to max_duration)"
        }
        let entry = BanEntry(network: network, timeout: length, comment: comment)
        changes.lock()
        defer { changes.unlock() }
        do throws(FirewallError) {
            if entry.set.holdsPrefixes {
                // An interval set refuses overlapping ranges: say which ban is in the way.
                let existing = try kernel.bans() ?? []
                if let overlapping = existing.first(where: { $0.network != network && $0.set == entry.set && $0.network.overlaps(network) }) {
                    throw FirewallError.rejected("\(network.compactDescription) overlaps the ban of \(overlapping.network.compactDescription); lift that one first")
                }
            }
            // A ban already there is given again (its time starts over); an address needs no read of the sets.
            _ = try kernel.removeBan(network)
            try kernel.addBans([entry])
        } catch {
            throw Refusal(description: Self.explain(error, capacity: settings.capacity))
        }
        logger.info("ban added", metadata: [
            "source": .string(network.compactDescription), "for_seconds": .stringConvertible(length.wholeMilliseconds / 1_000),
            "comment": .string(entry.comment ?? ""),
        ])
        return "banned \(network.compactDescription) for \(Self.text(length))\(note)"
    }

    /// Lifts the ban of exactly `text` (as it was given); with `onlyIfCommentStartsWith`, only a ban whose
    /// comment says it came from there (CrowdSec lifting its own bans, not fail2ban's).
    func lift(_ text: String, by who: String, onlyIfCommentStartsWith origin: String? = nil) throws(Refusal) -> String {
        guard settings.withLockedValue({ $0.enabled }) else { throw Refusal(description: "bans are not enabled ([bans] enabled = true)") }
        let network: IPNetwork
        switch IPNetwork.parsing(text) {
        case .success(let parsed): network = parsed
        case .failure(let error): throw Refusal(description: error.text)
        }
        let removed: Bool
        changes.lock()
        defer { changes.unlock() }
        do throws(FirewallError) {
            if let origin, !(try kernel.bans() ?? []).contains(where: { $0.network == network && ($0.comment ?? "").hasPrefix(origin) }) {
                removed = false
            } else {
                removed = try kernel.removeBan(network)
            }
        } catch {
            throw Refusal(description: Self.explain(error, capacity: 0))
        }
        guard removed else { throw Refusal(description: "\(network.compactDescription) is not banned (or its ban expired)") }
        logger.info("ban lifted", metadata: ["source": .string(network.compactDescription), "by": .string(who)])
        return "lifted the ban of \(network.compactDescription)"
    }

    /// Every ban, soonest to expire first: address, time left, duration, comment; one per line, tab-separated.
    func list() throws(Refusal) -> [String] {
        let entries: [BanEntry]
        do {
            entries = try kernel.bans() ?? []
        } catch {
            throw Refusal(description: Self.explain(error, capacity: 0))
        }
        return entries.sorted { ($0.expires ?? .zero) < ($1.expires ?? .zero) }.map { entry in
            "\(entry.network.compactDescription)\t\(Self.text(entry.expires ?? .zero))\t\(Self.text(entry.timeout))\t\(entry.comment ?? "")"
        }
    }

    private static func explain(_ error: FirewallError, capacity: Int) -> String {
        if case .system(_, let code) = error, code == ENFILE || code == ENOSPC {
            return "the ban set is full (capacity \(capacity)); raise [bans] capacity or lift bans"
        }
        if case .rejected(let details) = error, details.contains("No space left") || details.contains("Too many open files in system") {
            return "the ban set is full (capacity \(capacity)); raise [bans] capacity or lift bans"
        }
        if case .rejected(let details) = error, !details.hasPrefix("the kernel") { return details }
        return error.description
    }

    /// `1h30m`, `45s`, `2d`.
    static func text(_ duration: Duration) -> String {
        var seconds = max(0, duration.wholeMilliseconds / 1_000)
        if seconds == 0 { return "0s" }
        var parts: [String] = []
        for (unit, size) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60), ("s", 1)] where seconds >= size {
            parts.append("\(seconds / size)\(unit)")
            seconds %= size
        }
        return parts.joined()
    }
}

extension BanDesk {
    /// The ban thread: writes what listeners' ban rules ask for, and every five seconds (and after each
    /// change) gives the board the bans the kernel holds, so that banned clients behind a trusted hop are
    /// refused and expired bans are let go. A refused request (a source never banned, a full set) is logged
    /// at most once a minute.
    static func serve(_ board: BanBoard, desk: BanDesk, logger: Logger) {
        var lastRefusalLog = ContinuousClock.now - .seconds(120)
        while true {
            let requests = board.takeRequests(waitingAtMost: 5_000)
            for request in requests {
                do {
                    _ = try desk.ban(request.source.description, for: request.duration, comment: request.comment)
                } catch {
                    if ContinuousClock.now - lastRefusalLog >= .seconds(60) {
                        lastRefusalLog = .now
                        logger.warning("automatic ban refused (said at most once a minute)", metadata: [
                            "source": .stringConvertible(request.source), "error": .string("\(error)"), "rule": .string(request.comment),
                        ])
                    }
                }
            }
            desk.refresh(board)
        }
    }

    /// Gives the board the bans as the kernel holds them now.
    func refresh(_ board: BanBoard) {
        guard settings.withLockedValue({ $0.enabled }), let entries = try? kernel.bans() else { return }
        board.publish(AddressSet(entries.map(\.network)))
        count.withLockedValue { $0 = entries.count }
    }

    /// How many bans the kernel held at the last refresh (nil before one, or with bans disabled).
    var lastCount: Int? {
        settings.withLockedValue { $0.enabled } ? count.withLockedValue { $0 } : nil
    }
}
