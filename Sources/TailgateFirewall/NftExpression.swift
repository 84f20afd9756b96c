/// One nf_tables expression of a rule. Loads go to register 1, comparisons and lookups read it.
enum NftExpression: Sendable, Equatable {
    enum MetaKey: Sendable, Equatable { case l4proto, nfproto, iifname }
    enum CompareOperator: Sendable, Equatable { case equal, notEqual, greaterOrEqual, lessOrEqual }
    enum PayloadBase: Sendable, Equatable { case network, transport }
    enum Verdict: Sendable, Equatable {
        case accept, drop
        /// Back to the calling chain (`return`).
        case `return`
        case jump(String)
    }
    enum Reject: Sendable, Equatable {
        /// `reject with tcp reset`.
        case tcpReset
        /// `reject` in the inet family: ICMP or ICMPv6 port unreachable.
        case portUnreachable
    }

    case meta(MetaKey)
    case compare(CompareOperator, [UInt8])
    case payload(PayloadBase, offset: UInt32, length: UInt32)
    /// Lookup in a named set of the same table (`@name`).
    case lookup(set: String)
    /// `fib daddr type`: the route type of the destination address (host-order u32).
    case fibDestinationType
    /// `ct direction` (one byte: 0 original, 1 reply).
    case conntrackDirection
    /// A named counter (`counter name "…"`), an objref expression.
    case counter(name: String)
    case verdict(Verdict)
    case reject(Reject)
}
