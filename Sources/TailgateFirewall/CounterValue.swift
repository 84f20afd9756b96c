/// The value of one named nftables counter.
public struct CounterValue: Sendable, Equatable {
    /// Packets counted.
    public var packets: UInt64
    /// Bytes counted (layer 3 and up).
    public var bytes: UInt64

    /// A value; zero by default.
    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }

    static func + (lhs: CounterValue, rhs: CounterValue) -> CounterValue {
        CounterValue(packets: lhs.packets &+ rhs.packets, bytes: lhs.bytes &+ rhs.bytes)
    }
}
