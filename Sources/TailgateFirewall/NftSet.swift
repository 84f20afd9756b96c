import TailgateConfig

/// A named set of the table, described by inclusive key ranges; the netlink elements and the
/// `nft list` text are both derived from them.
struct NftSet: Sendable, Equatable {
    /// The set's key type, as nft names it.
    enum KeyType: Sendable, Equatable {
        case interfaceName, ipv4Address, ipv6Address, inetService

        /// The type name `nft list` prints.
        var nftName: String {
            switch self {
            case .interfaceName: "ifname"
            case .ipv4Address: "ipv4_addr"
            case .ipv6Address: "ipv6_addr"
            case .inetService: "inet_service"
            }
        }

        /// nft's datatype id (NFTA_SET_KEY_TYPE): the kernel ignores it, `nft list` needs it.
        var datatype: UInt32 {
            switch self {
            case .interfaceName: 41
            case .ipv4Address: 7
            case .ipv6Address: 8
            case .inetService: 13
            }
        }

        /// Key length in bytes.
        var length: Int {
            switch self {
            case .interfaceName: 16
            case .ipv4Address: 4
            case .ipv6Address: 16
            case .inetService: 2
            }
        }

        /// nft's byte order for the key (userdata NFTNL_UDATA_SET_KEYBYTEORDER): 1 host, 2 big endian.
        var byteOrder: UInt32 { self == .interfaceName ? 1 : 2 }
    }

    /// An inclusive range of keys; a single key has `low == high`.
    struct KeyRange: Sendable, Equatable {
        var low: [UInt8]
        var high: [UInt8]
    }

    /// One netlink set element.
    struct Element: Sendable, Equatable {
        var key: [UInt8]
        /// NFT_SET_ELEM_INTERVAL_END: the first key after a range.
        var isIntervalEnd: Bool
    }

    let name: String
    let keyType: KeyType
    /// NFT_SET_INTERVAL.
    let isInterval: Bool
    /// NFTNL_SET_ID, so rules in the same batch can refer to the set.
    let id: UInt32
    /// In the order `nft list` prints them.
    let ranges: [KeyRange]
    /// NFT_SET_TIMEOUT: elements may carry a timeout (the ban sets).
    var hasTimeouts = false
    /// The most elements the kernel takes (`size`); nil: no limit.
    var size: UInt32?
    /// Elements are added and removed at run time (the ban sets): apply keeps those in the kernel, and
    /// drift is judged on the set's definition only.
    var isManaged = false

    /// The `flags` line of `nft list`, if any.
    var flagsText: String? {
        switch (isInterval, hasTimeouts) {
        case (false, false): nil
        case (true, false): "interval"
        case (false, true): "timeout"
        case (true, true): "interval,timeout"
        }
    }

    /// The elements as nft writes them: for interval sets `[0 END]` unless the first range starts at 0,
    /// then `[start]` and `[last+1 END]` per range (no END when a range reaches the top of the key space).
    var elements: [Element] {
        guard isInterval else { return ranges.map { Element(key: $0.low, isIntervalEnd: false) } }
        var elements: [Element] = []
        if let first = ranges.first, first.low.contains(where: { $0 != 0 }) {
            elements.append(Element(key: [UInt8](repeating: 0, count: first.low.count), isIntervalEnd: true))
        }
        for range in ranges {
            elements.append(Element(key: range.low, isIntervalEnd: false))
            if let end = ByteKey.successor(of: range.high) {
                elements.append(Element(key: end, isIntervalEnd: true))
            }
        }
        return elements
    }
}

extension NftSet {
    /// A hash set of interface names (duplicates dropped), zero-padded to 16 bytes. A name of 16 bytes
    /// or more (which configuration validation refuses) keeps its full length plus a NUL, so the kernel
    /// rejects it instead of matching a truncated name.
    static func interfaces(_ name: String, id: UInt32, names: [String]) -> NftSet {
        let keys = Set(names).map { name -> [UInt8] in
            let bytes = Array(name.utf8)
            return bytes + [UInt8](repeating: 0, count: max(16 - bytes.count, 1))
        }
        // nft sorts ifname keys as host-endian (little-endian) numbers: last byte most significant.
        let sorted = keys.sorted { ByteKey.precedes(Array($0.reversed()), Array($1.reversed())) }
        return NftSet(name: name, keyType: .interfaceName, isInterval: false, id: id, ranges: sorted.map { KeyRange(low: $0, high: $0) })
    }

    /// An interval set of address prefixes of one family, sorted, with overlapping and adjacent
    /// prefixes merged (as nft must be given them).
    static func addresses(_ name: String, id: UInt32, family: IPAddress.Family, networks: [IPNetwork]) -> NftSet {
        let ranges = networks.filter { $0.address.family == family }.map { network -> KeyRange in
            let bytes = network.address.bytes
            var low = bytes
            var high = bytes
            for index in bytes.indices {
                let bits = network.prefixLength - index * 8
                let mask: UInt8 = bits >= 8 ? 0xFF : bits <= 0 ? 0 : ~(UInt8(0xFF) >> UInt8(bits))
                low[index] = bytes[index] & mask
                high[index] = bytes[index] | ~mask
            }
            return KeyRange(low: low, high: high)
        }.sorted { ByteKey.precedes($0.low, $1.low) }
        var merged: [KeyRange] = []
        for range in ranges {
            guard let last = merged.last else {
                merged.append(range)
                continue
            }
            // A range reaching the top of the address space already covers everything after it.
            guard let next = ByteKey.successor(of: last.high) else { continue }
            if ByteKey.precedes(next, range.low) {
                merged.append(range)
            } else if ByteKey.precedes(last.high, range.high) {
                merged[merged.count - 1].high = range.high
            }
        }
        let keyType: KeyType = family == .v4 ? .ipv4Address : .ipv6Address
        return NftSet(name: name, keyType: keyType, isInterval: true, id: id, ranges: merged)
    }

    /// A ban set: addresses of one family with timeouts, single addresses (a hash) or prefixes (`interval`),
    /// at most `size` of them; its elements are managed at run time.
    static func bans(_ name: String, id: UInt32, family: IPAddress.Family, prefixes: Bool, size: UInt32) -> NftSet {
        NftSet(
            name: name, keyType: family == .v4 ? .ipv4Address : .ipv6Address, isInterval: prefixes, id: id, ranges: [],
            hasTimeouts: true, size: size, isManaged: true
        )
    }

    /// A set of ports in network byte order; an interval set only when a range is present.
    static func ports(_ name: String, id: UInt32, ports: [FirewallConfiguration.PortRange]) -> NftSet {
        let sorted = ports.sorted()
        let ranges = sorted.map { KeyRange(low: ByteKey.port($0.lower), high: ByteKey.port($0.upper)) }
        let isInterval = sorted.contains { $0.lower != $0.upper }
        return NftSet(name: name, keyType: .inetService, isInterval: isInterval, id: id, ranges: ranges)
    }
}
