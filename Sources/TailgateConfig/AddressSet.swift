/// A set of IPv4 and IPv6 addresses given as prefixes, kept as sorted, merged ranges: membership is a
/// binary search (a 10,000-prefix deny list costs 14 comparisons per connection, not 10,000).
public struct AddressSet: Sendable, Equatable {
    /// Inclusive ranges, sorted, neither overlapping nor adjacent.
    private var v4Starts: [UInt32] = [], v4Ends: [UInt32] = []
    private var v6Starts: [UInt128] = [], v6Ends: [UInt128] = []

    public init() {}

    public init(_ networks: [IPNetwork]) {
        var v4: [(UInt32, UInt32)] = [], v6: [(UInt128, UInt128)] = []
        for network in networks {
            switch network.address.family {
            case .v4:
                let host: UInt32 = network.prefixLength == 0 ? ~0 : (network.prefixLength == 32 ? 0 : ~(~UInt32(0) << (32 - network.prefixLength)))
                let start = UInt32(truncatingIfNeeded: network.address.low) & ~host
                v4.append((start, start | host))
            case .v6:
                let host: UInt128 = network.prefixLength == 0 ? ~0 : (network.prefixLength == 128 ? 0 : ~(~UInt128(0) << (128 - network.prefixLength)))
                let start = (UInt128(network.address.high) << 64 | UInt128(network.address.low)) & ~host
                v6.append((start, start | host))
            }
        }
        (v4Starts, v4Ends) = Self.merge(v4)
        (v6Starts, v6Ends) = Self.merge(v6)
    }

    /// Every address of both families.
    public static let everything = AddressSet([
        IPNetwork(address: IPAddress(v4: 0), prefixLength: 0), IPNetwork(address: IPAddress(v6: 1, 0), prefixLength: 0),
    ])

    public var isEmpty: Bool { v4Starts.isEmpty && v6Starts.isEmpty }

    /// Number of merged ranges (for logs: a list's size after merging).
    public var rangeCount: Int { v4Starts.count + v6Starts.count }

    public func contains(_ address: IPAddress) -> Bool {
        switch address.family {
        case .v4: return Self.find(UInt32(truncatingIfNeeded: address.low), v4Starts, v4Ends)
        case .v6: return Self.find(UInt128(address.high) << 64 | UInt128(address.low), v6Starts, v6Ends)
        }
    }

    /// Whether some address is in both sets.
    public func intersects(_ other: AddressSet) -> Bool {
        !Self.intersection(zip(v4Starts, v4Ends), zip(other.v4Starts, other.v4Ends)).isEmpty
            || !Self.intersection(zip(v6Starts, v6Ends), zip(other.v6Starts, other.v6Ends)).isEmpty
    }

    /// The addresses in both sets.
    public func intersection(_ other: AddressSet) -> AddressSet {
        var result = AddressSet()
        (result.v4Starts, result.v4Ends) = Self.unzip(Self.intersection(zip(v4Starts, v4Ends), zip(other.v4Starts, other.v4Ends)))
        (result.v6Starts, result.v6Ends) = Self.unzip(Self.intersection(zip(v6Starts, v6Ends), zip(other.v6Starts, other.v6Ends)))
        return result
    }

    /// The addresses in any of `sets`.
    public static func union(_ sets: [AddressSet]) -> AddressSet {
        var result = AddressSet()
        (result.v4Starts, result.v4Ends) = merge(sets.flatMap { Array(zip($0.v4Starts, $0.v4Ends)) })
        (result.v6Starts, result.v6Ends) = merge(sets.flatMap { Array(zip($0.v6Starts, $0.v6Ends)) })
        return result
    }

    /// The addresses of this set that are not in `other`.
    public func subtracting(_ other: AddressSet) -> AddressSet {
        var result = AddressSet()
        (result.v4Starts, result.v4Ends) = Self.unzip(Self.subtract(Array(zip(v4Starts, v4Ends)), Array(zip(other.v4Starts, other.v4Ends))))
        (result.v6Starts, result.v6Ends) = Self.unzip(Self.subtract(Array(zip(v6Starts, v6Ends)), Array(zip(other.v6Starts, other.v6Ends))))
        return result
    }

    private static func find<T: FixedWidthInteger>(_ value: T, _ starts: [T], _ ends: [T]) -> Bool {
        // The last range starting at or before `value`.
        var low = 0, high = starts.count
        while low < high {
            let middle = (low + high) / 2
            if starts[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low > 0 && value <= ends[low - 1]
    }

    private static func merge<T: FixedWidthInteger>(_ ranges: [(T, T)]) -> ([T], [T]) {
        var starts: [T] = [], ends: [T] = []
        for (start, end) in ranges.sorted(by: { $0.0 < $1.0 }) {
            if let last = ends.last, last == T.max || start <= last + 1 {
                ends[ends.count - 1] = max(last, end)
            } else {
                starts.append(start)
                ends.append(end)
            }
        }
        return (starts, ends)
    }

    private static func intersection<T: FixedWidthInteger, A: Sequence<(T, T)>, B: Sequence<(T, T)>>(_ a: A, _ b: B) -> [(T, T)] {
        let left = Array(a), right = Array(b)
        var result: [(T, T)] = []
        var i = 0, j = 0
        while i < left.count, j < right.count {
            let start = max(left[i].0, right[j].0), end = min(left[i].1, right[j].1)
            if start <= end { result.append((start, end)) }
            if left[i].1 < right[j].1 { i += 1 } else { j += 1 }
        }
        return result
    }

    private static func subtract<T: FixedWidthInteger>(_ ranges: [(T, T)], _ removed: [(T, T)]) -> [(T, T)] {
        var result: [(T, T)] = []
        var j = 0
        for (start, end) in ranges {
            var from = start
            var open = true
            while j < removed.count, removed[j].1 < from { j += 1 }
            var k = j
            while open, k < removed.count, removed[k].0 <= end {
                if removed[k].0 > from { result.append((from, removed[k].0 - 1)) }
                if removed[k].1 >= end { open = false } else { from = removed[k].1 + 1 }
                k += 1
            }
            if open { result.append((from, end)) }
        }
        return result
    }

    private static func unzip<T>(_ pairs: [(T, T)]) -> ([T], [T]) {
        (pairs.map(\.0), pairs.map(\.1))
    }
}
