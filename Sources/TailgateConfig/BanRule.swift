/// A listener's `ban`: what the proxy sees a source do wrong often enough to ban it in the kernel.
///
///     ban = { after = 10, within = "1m", for = "10m", max = "1d" }
///
/// `after` offenses within `within` ban the source for `for`, doubled for each ban it had before, up to
/// `max`. Offenses (`on`, default all): `over_source_limit`, `not_tls` (a ClientHello that is not one, or is
/// malformed), `hello_timeout` (nothing usable within client_hello_timeout or request_timeout), `denied` (an
/// access list refused it), `bad_request` (an http listener's 400/431).
public struct BanRule: Sendable, Equatable {
    public enum Offense: String, Sendable, CaseIterable {
        case overSourceLimit = "over_source_limit"
        case notTLS = "not_tls"
        case helloTimeout = "hello_timeout"
        case denied
        case badRequest = "bad_request"
    }

    public var after: Int
    public var within: Duration
    public var duration: Duration
    public var max: Duration
    public var offenses: Set<Offense>

    public init(after: Int, within: Duration, duration: Duration, max: Duration, offenses: Set<Offense> = Set(Offense.allCases)) {
        self.after = after
        self.within = within
        self.duration = duration
        self.max = max
        self.offenses = offenses
    }

    /// The length of a source's ban that had `earlier` bans before it: doubled each time, at most `max`.
    public func length(afterEarlierBans earlier: Int) -> Duration {
        var length = duration
        for _ in 0..<min(earlier, 40) where length < max { length = length * 2 }
        return Swift.min(length, max)
    }
}
