import CNftables
import TailgateConfig

/// One banned source in the kernel: an address or a prefix, how long the ban was given for, and (when read
/// back) how long it has left.
public struct BanEntry: Sendable, Equatable, CustomStringConvertible {
    public var network: IPNetwork
    /// The ban's whole duration (nf_tables keeps it in milliseconds).
    public var timeout: Duration
    /// Time left; nil for a ban about to be written.
    public var expires: Duration?

    public init(network: IPNetwork, timeout: Duration, expires: Duration? = nil) {
        self.network = network
        self.timeout = timeout
        self.expires = expires
    }

    public var set: BanSet { BanSet.holding(network) }

    public var description: String { network.compactDescription }

    /// The set elements of this ban: the address, or for a prefix its first address and (flagged as an
    /// interval end) the address after its last.
    func elements() -> [(key: [UInt8], isIntervalEnd: Bool)] {
        let model = NftSet.addresses("", id: 0, family: network.address.family, networks: [network])
        guard let range = model.ranges.first else { return [] }
        guard set.holdsPrefixes else { return [(range.low, false)] }
        var elements = [(key: range.low, isIntervalEnd: false)]
        if let end = ByteKey.successor(of: range.high) { elements.append((end, true)) }
        return elements
    }
}
