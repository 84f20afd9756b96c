import CNftables
import Glibc
import TailgateConfig

extension NetlinkFirewall {
    /// The bans in the table's ban sets, with the time each has left; nil when the table is missing. An
    /// entry whose set is missing (a table from an older tailgate) is simply not there.
    public func bans(tableName: String = "tailgate") throws(FirewallError) -> [BanEntry]? {
        let socket = try NetlinkSocket(operation: "reading the bans of table inet \(tableName)")
        guard try socket.tableExists(tableName) else { return nil }
        var entries: [BanEntry] = []
        for set in BanSet.allCases {
            guard let elements = try socket.timedElements(tableName, set: set.rawValue) else { continue }
            entries += Self.entries(from: elements, set: set)
        }
        return entries
    }

    /// Adds `entries` in one batch (all or none); a ban already there keeps its own time left.
    public func addBans(_ entries: [BanEntry], tableName: String = "tailgate") throws(FirewallError) {
        guard !entries.isEmpty else { return }
        let socket = try NetlinkSocket(operation: "adding \(entries.count) ban(s) to table inet \(tableName)")
        var batch = NetlinkBatch(beginSequence: socket.reserveSequences(entries.count * 2 + 16))
        try batch.appendBans(entries, table: tableName)
        batch.finish()
        try socket.commit(batch)
    }

    /// Removes the ban of `network` (exactly that address or prefix). False when it was not there (never
    /// given, or expired).
    public func removeBan(_ network: IPNetwork, tableName: String = "tailgate") throws(FirewallError) -> Bool {
        let socket = try NetlinkSocket(operation: "removing the ban of \(network.compactDescription) from table inet \(tableName)")
        var batch = NetlinkBatch(beginSequence: socket.reserveSequences(8))
        let entry = BanEntry(network: network, timeout: .zero)
        try batch.appendElements(NFT_MSG_DELSETELEM, flags: 0, set: entry.set.rawValue, table: tableName,
                                 elements: entry.elements().map { ElementSpec(key: $0.key, isIntervalEnd: $0.isIntervalEnd) },
                                 description: "delete element \(entry)")
        batch.finish()
        do {
            try socket.commit(batch)
            return true
        } catch .notFound {
            return false
        }
    }

    /// Ban entries from a set's elements: each element of a hash set is an address; an interval set's are
    /// ranges (a start, then the element after its end flagged as an interval end), read back as prefixes.
    static func entries(from elements: [TimedElement], set: BanSet) -> [BanEntry] {
        let width = set.family == .v4 ? 32 : 128
        guard set.holdsPrefixes else {
            return elements.filter { !$0.isIntervalEnd }.compactMap { element in
                IPNetwork(bytes: element.key, prefixLength: width).map {
                    BanEntry(network: $0, timeout: element.timeout, expires: element.expires, comment: element.comment)
                }
            }
        }
        let sorted = elements.sorted { ByteKey.precedes($0.key, $1.key) }
        var entries: [BanEntry] = []
        for (index, element) in sorted.enumerated() where !element.isIntervalEnd {
            let end = sorted[(index + 1)...].first { $0.isIntervalEnd }?.key
            let length = Self.prefixLength(from: element.key, toBefore: end)
            if let network = IPNetwork(bytes: element.key, prefixLength: length) {
                entries.append(BanEntry(network: network, timeout: element.timeout, expires: element.expires, comment: element.comment))
            }
        }
        return entries
    }

    /// The prefix length of the range [start, end): the bits after it must be zero in `start` and the range
    /// must span them exactly; `end` nil means to the top of the address space.
    private static func prefixLength(from start: [UInt8], toBefore end: [UInt8]?) -> Int {
        let width = start.count * 8
        guard let end else {
            // Up to the top: as many trailing bits as are zero in the start.
            var length = width
            while length > 0, start[(length - 1) / 8] & (0x80 >> UInt8((length - 1) % 8)) == 0 { length -= 1 }
            return length
        }
        for length in stride(from: width, through: 0, by: -1) {
            var last = start
            // Set the bits after `length` to one: the range's last address if it is that prefix.
            for bit in length..<width { last[bit / 8] |= 0x80 >> UInt8(bit % 8) }
            if ByteKey.successor(of: last) == end { return length }
        }
        return width
    }
}

/// A set element as a dump returns it: key, interval-end flag, timeout and time left.
struct TimedElement {
    var key: [UInt8]
    var isIntervalEnd: Bool
    var timeout: Duration
    var expires: Duration?
    var comment: String?
}

extension NetlinkSocket {
    /// The elements of one set with their timeouts (GETSETELEM dump); nil when the set is missing.
    func timedElements(_ table: String, set name: String) throws(FirewallError) -> [TimedElement]? {
        guard let set = nftnl_set_alloc() else { throw NftnlObjects.outOfMemory("nftnl_set_alloc") }
        defer { nftnl_set_free(set) }
        nftnl_set_set_u32(set, attribute(NFTNL_SET_FAMILY), UInt32(NFPROTO_INET))
        _ = nftnl_set_set_str(set, attribute(NFTNL_SET_TABLE), table)
        _ = nftnl_set_set_str(set, attribute(NFTNL_SET_NAME), name)
        let message = Self.getRequest(NFT_MSG_GETSETELEM, flags: NLM_F_DUMP, sequence: reserveSequences(1)) {
            nftnl_set_elems_nlmsg_build_payload($0, set)
        }
        let outcome = try request(message) { reply in
            if let header = reply.header { _ = nftnl_set_elems_nlmsg_parse(header, set) }
        }
        guard outcome == .done, let iterator = nftnl_set_elems_iter_create(set) else { return nil }
        defer { nftnl_set_elems_iter_destroy(iterator) }
        var elements: [TimedElement] = []
        while let element = nftnl_set_elems_iter_next(iterator) {
            var length: UInt32 = 0
            guard let data = nftnl_set_elem_get(element, attribute(NFTNL_SET_ELEM_KEY), &length) else { continue }
            let key = Array(UnsafeRawBufferPointer(start: data, count: Int(length)))
            let flagsAttribute = attribute(NFTNL_SET_ELEM_FLAGS)
            let flags = nftnl_set_elem_is_set(element, flagsAttribute) ? nftnl_set_elem_get_u32(element, flagsAttribute) : 0
            let timeoutAttribute = attribute(NFTNL_SET_ELEM_TIMEOUT), expirationAttribute = attribute(NFTNL_SET_ELEM_EXPIRATION)
            let timeout = nftnl_set_elem_is_set(element, timeoutAttribute) ? Int64(nftnl_set_elem_get_u64(element, timeoutAttribute)) : 0
            let expires: Duration? = nftnl_set_elem_is_set(element, expirationAttribute)
                ? .milliseconds(Int64(nftnl_set_elem_get_u64(element, expirationAttribute))) : nil
            var comment: String?
            var userdataLength: UInt32 = 0
            if let userdata = nftnl_set_elem_get(element, attribute(NFTNL_SET_ELEM_USERDATA), &userdataLength) {
                comment = BanEntry.comment(fromUserdata: Array(UnsafeRawBufferPointer(start: userdata, count: Int(userdataLength))))
            }
            elements.append(TimedElement(
                key: key, isIntervalEnd: flags & NFT_SET_ELEM_INTERVAL_END.rawValue != 0, timeout: .milliseconds(timeout), expires: expires,
                comment: comment
            ))
        }
        return elements
    }
}

/// One element to write: key, interval-end flag, and for a ban's start its timeout and comment.
struct ElementSpec {
    var key: [UInt8]
    var isIntervalEnd: Bool
    var timeout: Duration?
    var userdata: [UInt8]?
}

extension NetlinkBatch {
    /// NEWSETELEM messages adding `entries`, set by set, each with its timeout (at least one millisecond;
    /// nf_tables counts in milliseconds). An interval set also gets the `0 END` element nft writes first.
    mutating func appendBans(_ entries: [BanEntry], table: String) throws(FirewallError) {
        for set in BanSet.allCases {
            let mine = entries.filter { $0.set == set }
            guard !mine.isEmpty else { continue }
            var elements: [ElementSpec] = []
            if set.holdsPrefixes {
                elements.append(ElementSpec(key: [UInt8](repeating: 0, count: set.family == .v4 ? 4 : 16), isIntervalEnd: true))
            }
            for entry in mine {
                let timeout = max(entry.expires ?? entry.timeout, .milliseconds(1))
                elements += entry.elements().map {
                    $0.isIntervalEnd ? ElementSpec(key: $0.key, isIntervalEnd: true)
                        : ElementSpec(key: $0.key, isIntervalEnd: false, timeout: timeout, userdata: entry.commentUserdata)
                }
            }
            try appendElements(NFT_MSG_NEWSETELEM, flags: NLM_F_CREATE, set: set.rawValue, table: table, elements: elements,
                               description: "add \(mine.count) element(s) to set \(set.rawValue)")
        }
    }

    /// One message of `type` for `elements` of set `name` (a few hundred at most: well under 64 KiB).
    mutating func appendElements(
        _ type: nf_tables_msg_types, flags: Int32, set name: String, table: String,
        elements: [ElementSpec], description: String
    ) throws(FirewallError) {
        for chunk in stride(from: 0, to: elements.count, by: 256) {
            guard let set = nftnl_set_alloc() else { throw NftnlObjects.outOfMemory("nftnl_set_alloc") }
            defer { nftnl_set_free(set) }
            nftnl_set_set_u32(set, attribute(NFTNL_SET_FAMILY), UInt32(NFPROTO_INET))
            _ = nftnl_set_set_str(set, attribute(NFTNL_SET_TABLE), table)
            _ = nftnl_set_set_str(set, attribute(NFTNL_SET_NAME), name)
            for element in elements[chunk..<min(elements.count, chunk + 256)] {
                guard let item = nftnl_set_elem_alloc() else { throw NftnlObjects.outOfMemory("nftnl_set_elem_alloc") }
                _ = element.key.withUnsafeBytes { nftnl_set_elem_set(item, attribute(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
                if element.isIntervalEnd {
                    nftnl_set_elem_set_u32(item, attribute(NFTNL_SET_ELEM_FLAGS), NFT_SET_ELEM_INTERVAL_END.rawValue)
                }
                if let timeout = element.timeout {
                    nftnl_set_elem_set_u64(item, attribute(NFTNL_SET_ELEM_TIMEOUT), UInt64(max(1, timeout.wholeMilliseconds)))
                }
                if let userdata = element.userdata {
                    _ = userdata.withUnsafeBytes { nftnl_set_elem_set(item, attribute(NFTNL_SET_ELEM_USERDATA), $0.baseAddress, UInt32($0.count)) }
                }
                nftnl_set_elem_add(set, item)
            }
            append(type, flags: flags, description) { nftnl_set_elems_nlmsg_build_payload($0, set) }
        }
    }
}
