/// Where the agent is in its life, as far as SIGHUP is concerned: one state instead of a set of flags.
enum ReloadLife: Equatable {
    /// The first configuration is being applied; `pending`: a SIGHUP came meanwhile (the file may have
    /// changed after it was read), served once the first one is applied.
    case starting(pending: Bool)
    /// Serving, with no reload under way.
    case serving
    /// A reload reads or applies the file; `again`: SIGHUPs came meanwhile, so one more follows.
    case reloading(again: Bool)
    /// Draining after SIGTERM/SIGINT: reloads are refused (`refused` counts them; the first is a warning);
    /// `abort`: a second stop signal came, so the drain ends now.
    case stopping(refused: Int, abort: Bool)

    /// What a SIGHUP does now.
    enum HangUp: Equatable {
        case reloadNow
        /// A reload runs: one more follows it.
        case queued
        /// Served once the first configuration is applied.
        case afterStart
        /// Refused while stopping; `first`: the first refusal (a warning; later ones are debug).
        case refused(first: Bool)
    }

    mutating func hangUp() -> HangUp {
        switch self {
        case .starting:
            self = .starting(pending: true)
            return .afterStart
        case .serving:
            self = .reloading(again: false)
            return .reloadNow
        case .reloading:
            self = .reloading(again: true)
            return .queued
        case .stopping(let refused, let abort):
            self = .stopping(refused: refused + 1, abort: abort)
            return .refused(first: refused == 0)
        }
    }

    /// The first configuration is applied; true when a SIGHUP waits (the reload then runs at once).
    mutating func started() -> Bool {
        guard case .starting(let pending) = self else { return false }
        self = pending ? .reloading(again: false) : .serving
        return pending
    }

    /// A reload finished; true when another must follow (SIGHUPs came while it ran).
    mutating func reloadFinished() -> Bool {
        guard case .reloading(let again) = self else { return false }
        self = again ? .reloading(again: false) : .serving
        return again
    }

    mutating func stop() {
        if case .stopping = self { return }
        self = .stopping(refused: 0, abort: false)
    }

    /// A second stop signal while draining.
    mutating func abort() {
        guard case .stopping(let refused, _) = self else { return }
        self = .stopping(refused: refused, abort: true)
    }

    var isStopping: Bool {
        if case .stopping = self { return true }
        return false
    }

    var isReloading: Bool {
        if case .reloading = self { return true }
        return false
    }

    var abortRequested: Bool {
        if case .stopping(_, let abort) = self { return abort }
        return false
    }
}

/// What /status and /metrics say about past reloads.
struct ReloadHistory {
    /// Reloads attempted (SIGHUPs that read the file).
    var attempts = 0
    /// Reloads refused; the previous configuration kept serving.
    var failures = 0
    var last: ReloadReport?
    /// When the last reload ended (wall clock, for /status).
    var lastTime: String?
}
