/// A table reduced to what matters for drift: object names and types, set keys, flags and elements,
/// chain hooks, and the expressions of each rule in order. Handles, counter values, set ids and
/// userdata are left out. The live side comes from a dump, the desired side from the same builders
/// that apply uses, and both are read through the same libnftnl getters.
struct CanonicalTable {
    struct CanonicalSet: Equatable {
        /// Key length and flags.
        var header: String
        /// `key-hex flags N`, sorted.
        var elements: [String]
        /// Desired side: the elements are managed at run time (the ban sets) and not compared.
        var isManaged = false
    }

    /// Table flags: 0 as applied; NFT_TABLE_F_DORMANT (1) would switch the whole table off.
    var tableFlags: UInt32 = 0
    /// Object name → type.
    var objects: [String: UInt32] = [:]
    var sets: [String: CanonicalSet] = [:]
    /// Chain name → `hook … priority … policy …` or `regular`.
    var chains: [String: String] = [:]
    /// Chain name → rules in evaluation order.
    var rules: [String: [String]] = [:]
    /// Live side only: replies libnftnl could not parse (e.g. expressions it does not know).
    var unparsed = 0
    /// Desired side only: chain name → the `nft list` line of each rule, for messages.
    var ruleTexts: [String: [String]] = [:]

    /// One readable line per difference between this (live) table and `desired`; empty when in sync.
    func differences(from desired: CanonicalTable) -> [String] {
        var found: [String] = []
        if unparsed > 0 { found.append("\(unparsed) object(s) of the table could not be parsed") }
        if tableFlags != desired.tableFlags {
            let dormant = tableFlags & 1 != 0 ? " (dormant: the table filters nothing)" : ""
            found.append("table flags 0x\(String(tableFlags, radix: 16)), expected 0x\(String(desired.tableFlags, radix: 16))\(dormant)")
        }
        for name in Set(objects.keys).union(desired.objects.keys).sorted() {
            switch (objects[name], desired.objects[name]) {
            case (nil, _?): found.append("counter \(name) is missing")
            case (_?, nil): found.append("unexpected object \(name)")
            case let (live?, wanted?) where live != wanted: found.append("object \(name) has type \(live), expected \(wanted)")
            default: break
            }
        }
        for name in Set(sets.keys).union(desired.sets.keys).sorted() {
            switch (sets[name], desired.sets[name]) {
            case (nil, _?): found.append("set \(name) is missing")
            case (_?, nil): found.append("unexpected set \(name)")
            case let (live?, wanted?):
                if live.header != wanted.header { found.append("set \(name): key or flags differ (\(live.header), expected \(wanted.header))") }
                if !wanted.isManaged, live.elements != wanted.elements {
                    let unexpected = Set(live.elements).subtracting(wanted.elements).count
                    let missing = Set(wanted.elements).subtracting(live.elements).count
                    found.append("set \(name): elements differ (\(unexpected) unexpected, \(missing) missing)")
                }
            default: break
            }
        }
        for name in Set(chains.keys).union(desired.chains.keys).sorted() {
            switch (chains[name], desired.chains[name]) {
            case (nil, _?): found.append("chain \(name) is missing")
            case (_?, nil): found.append("unexpected chain \(name)")
            case let (live?, wanted?) where live != wanted: found.append("chain \(name): \(live), expected \(wanted)")
            default: break
            }
            found += ruleDifferences(chain: name, desired: desired)
        }
        return found
    }

    private func ruleDifferences(chain: String, desired: CanonicalTable) -> [String] {
        let live = rules[chain] ?? []
        let wanted = desired.rules[chain] ?? []
        guard live != wanted, chains[chain] != nil, desired.chains[chain] != nil else { return [] }
        var found: [String] = []
        if live.count != wanted.count { found.append("chain \(chain): \(live.count) rules, expected \(wanted.count)") }
        let firstDifference = zip(live, wanted).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        if let index = firstDifference ?? (live.count == wanted.count ? nil : min(live.count, wanted.count)) {
            let texts = desired.ruleTexts[chain] ?? []
            let expected = index < texts.count ? " (expected: \(texts[index]))" : ""
            found.append("chain \(chain): rule \(index + 1) differs\(expected)")
        }
        return found
    }
}
