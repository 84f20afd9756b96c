extension FirewallRuleset {
    /// The table in `nft list` layout: counters, sets and chains in creation order, one blank line
    /// between them, tabs for indentation.
    func renderText() -> String {
        var blocks: [String] = counterNames.map { "\tcounter \($0) {\n\t\tpackets 0 bytes 0\n\t}\n" }
        for set in sets {
            var block = "\tset \(set.name) {\n\t\ttype \(set.keyType.nftName)\n"
            if let size = set.size { block += "\t\tsize \(size)\n" }
            if let flags = set.flagsText { block += "\t\tflags \(flags)\n" }
            if !set.ranges.isEmpty { block += "\t\telements = { \(set.elementsText) }\n" }
            blocks.append(block + "\t}\n")
        }
        for chain in chains {
            var block = "\tchain \(chain.name) {\n"
            if let hook = chain.hook { block += "\t\t\(hook.text)\n" }
            for rule in rules where rule.chain == chain.name { block += "\t\t\(rule.text)\n" }
            blocks.append(block + "\t}\n")
        }
        return "table inet \(tableName) {\n" + blocks.joined(separator: "\n") + "}\n"
    }
}
