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
    /// Who banned and why (`fail2ban: sshd`), kept in the kernel with the element (`comment` in `nft list`),
    /// so it survives restarts; printable ASCII without quotes, at most `maxComment` bytes.
    public var comment: String?

    public static let maxComment = 120

    public init(network: IPNetwork, timeout: Duration, expires: Duration? = nil, comment: String? = nil) {
        self.network = network
        self.timeout = timeout
        self.expires = expires
        self.comment = comment.map(Self.clean)
    }

    /// Printable ASCII, quotes and backslashes replaced, cut to `maxComment` bytes.
    public static func clean(_ text: String) -> String {
        let bytes = text.utf8.prefix(maxComment).map { byte -> UInt8 in
            byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") ? byte : UInt8(ascii: "_")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The element userdata nft writes for `comment "…"`: one TLV of type NFTNL_UDATA_SET_ELEM_COMMENT with
    /// the text and its NUL.
    var commentUserdata: [UInt8]? {
        guard let comment, !comment.isEmpty else { return nil }
        let value = Array(comment.utf8) + [0]
        return [UInt8(NFTNL_UDATA_SET_ELEM_COMMENT.rawValue), UInt8(value.count)] + value
    }

    /// The comment in element userdata (the first TLV of the comment type), if any.
    static func comment(fromUserdata bytes: [UInt8]) -> String? {
        var index = 0
        while index + 2 <= bytes.count {
            let type = bytes[index], length = Int(bytes[index + 1])
            guard index + 2 + length <= bytes.count else { return nil }
            if type == UInt8(NFTNL_UDATA_SET_ELEM_COMMENT.rawValue) {
                return String(decoding: bytes[(index + 2)..<(index + 2 + length)].prefix { $0 != 0 }, as: UTF8.self)
            }
            index += 2 + length
        }
        return nil
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
