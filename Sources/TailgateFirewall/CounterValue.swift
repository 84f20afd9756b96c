/// The value of one named nftables counter.
public struct CounterValue: Sendable, Equatable {
    public var packets: UInt64
    public var bytes: UInt64

    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }

    static func + (lhs: CounterValue, rhs: CounterValue) -> CounterValue {
        CounterValue(packets: lhs.packets &+ rhs.packets, bytes: lhs.bytes &+ rhs.bytes)
    }
}
