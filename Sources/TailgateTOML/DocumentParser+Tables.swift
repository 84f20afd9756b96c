/// The rules for where tables and keys may be defined (TOML 1.0, "Table",
/// "Inline Table" and "Array of Tables").
extension DocumentParser {
    /// How a key path walks through existing tables.
    enum WalkMode {
        /// A `[header]` path: may pass through any table and into the last
        /// element of an array of tables; creates implicit tables.
        case header
        /// A dotted key: may only pass through tables made by dotted keys;
        /// creates such tables.
        case dottedKey
    }

    /// Handles `[key]`: returns the table it defines.
    mutating func defineTable(key: [KeyComponent], header: SourcePosition) throws(TOMLParseError) -> TableNode {
        let (parent, last) = try walk(key, mode: .header)
        let path = displayPath(key[...])
        guard let slot = parent.slot(last.name) else {
            let node = TableNode(origin: .header, position: header)
            parent.add(last.name, at: last.position, .table(node))
            return node
        }
        switch slot.content {
        case .table(let node):
            switch node.origin {
            case .implicit:
                node.origin = .header
                node.position = header
                return node
            case .dotted:
                throw TOMLParseError(
                    message: "cannot define table [\(path)] with a header: it was already created by dotted keys at \(slot.keyPosition)",
                    position: header
                )
            case .header, .arrayElement, .root, .inline:
                throw TOMLParseError(message: "duplicate table [\(path)] (first defined at \(node.position))", position: header)
            }
        case .tableArray(let array):
            throw TOMLParseError(
                message: "cannot define table [\(path)]: it is already an array of tables (first defined at \(array.position))",
                position: header
            )
        case .value(let value):
            throw TOMLParseError(
                message: "cannot define table [\(path)]: key '\(path)' is already \(described(value)) (defined at \(slot.keyPosition))",
                position: header
            )
        }
    }

    /// Handles `[[key]]`: appends a table to the array of tables and returns it.
    mutating func appendTableArrayElement(key: [KeyComponent], header: SourcePosition) throws(TOMLParseError) -> TableNode {
        let (parent, last) = try walk(key, mode: .header)
        let path = displayPath(key[...])
        let element = TableNode(origin: .arrayElement, position: header)
        guard let slot = parent.slot(last.name) else {
            parent.add(last.name, at: last.position, .tableArray(TableArrayNode(position: header, first: element)))
            return element
        }
        switch slot.content {
        case .tableArray(let array):
            array.elements.append(element)
            return element
        case .table(let node):
            throw TOMLParseError(
                message: "cannot define array of tables [[\(path)]]: '\(path)' is already a table (defined at \(node.position))",
                position: header
            )
        case .value(let value):
            let hint = value.array != nil ? "; an array written with [ ] cannot be extended by [[\(path)]]" : ""
            throw TOMLParseError(
                message: "cannot define array of tables [[\(path)]]: '\(path)' is already \(described(value)) (defined at \(slot.keyPosition))\(hint)",
                position: header
            )
        }
    }

    /// Handles `key = value` inside `table`.
    mutating func insert(_ value: TOMLValue, at key: [KeyComponent], into table: TableNode) throws(TOMLParseError) {
        let (parent, last) = try walk(key, from: table, mode: .dottedKey)
        if let existing = parent.slot(last.name) {
            throw TOMLParseError(
                message: "duplicate key '\(displayPath(key[...]))' (first defined at \(existing.keyPosition))",
                position: last.position
            )
        }
        parent.add(last.name, at: last.position, .value(value))
    }

    /// Follows all but the last component of `key`, creating missing tables,
    /// and returns the table that should hold the last component.
    private func walk(
        _ key: [KeyComponent], from start: TableNode? = nil, mode: WalkMode
    ) throws(TOMLParseError) -> (TableNode, KeyComponent) {
        var table = start ?? root
        for index in key.indices.dropLast() {
            table = try descend(from: table, through: key[index], path: displayPath(key[...index]), mode: mode)
        }
        // parseKey never returns an empty key; an empty one would be a bug there.
        guard let last = key.last else { preconditionFailure("empty key") }
        return (table, last)
    }

    private func descend(
        from table: TableNode, through component: KeyComponent, path: String, mode: WalkMode
    ) throws(TOMLParseError) -> TableNode {
        guard let slot = table.slot(component.name) else {
            let node = TableNode(origin: mode == .header ? .implicit : .dotted, position: component.position)
            table.add(component.name, at: component.position, .table(node))
            return node
        }
        switch slot.content {
        case .table(let node):
            if mode == .dottedKey && node.origin != .dotted {
                throw TOMLParseError(
                    message: "cannot add keys to table '\(path)' with dotted keys: it was defined by a table header at \(node.position)",
                    position: component.position
                )
            }
            return node
        case .tableArray(let array):
            guard mode == .header, let last = array.elements.last else {
                throw TOMLParseError(
                    message: "cannot add keys to array of tables '\(path)' with dotted keys (defined at \(array.position))",
                    position: component.position
                )
            }
            return last
        case .value(let value):
            let reason = value.table != nil
                ? "it is an inline table (defined at \(slot.keyPosition)), which cannot be extended"
                : "it is already \(described(value)) (defined at \(slot.keyPosition))"
            throw TOMLParseError(message: "cannot use '\(path)' as a table: \(reason)", position: component.position)
        }
    }

    private func described(_ value: TOMLValue) -> String {
        switch value.typeName {
        case "integer", "array": "an \(value.typeName)"
        case "table": "an inline table"
        default: "a \(value.typeName)"
        }
    }
}
