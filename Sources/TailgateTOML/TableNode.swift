/// A table under construction. The parser mutates these through references
/// while it reads the document and freezes the tree into `TOMLTable` values at
/// the end. Lookups go through a dictionary, so building is O(1) per key.
final class TableNode {
    /// How the table came to exist; decides what may still be added to it.
    enum Origin {
        /// The document itself.
        case root
        /// Created as a parent by a header such as `[a.b]` (for `a`); a later
        /// `[a]` header may still define it, once.
        case implicit
        /// Defined by its own `[header]`.
        case header
        /// One element of an array of tables, defined by `[[header]]`.
        case arrayElement
        /// Created by a dotted key such as `a.b = 1` (for `a`); only more
        /// dotted keys may add to it, never a header.
        case dotted
        /// An inline `{ ... }` table while it is being parsed.
        case inline
    }

    /// What a key holds.
    enum Content {
        /// A finished value: a scalar, a static array or an inline table.
        case value(TOMLValue)
        /// A table that may still receive keys.
        case table(TableNode)
        /// An array of tables that `[[header]]`s append to.
        case tableArray(TableArrayNode)
    }

    struct Slot {
        let key: String
        let keyPosition: SourcePosition
        var content: Content
    }

    var origin: Origin
    /// The table's value position; see `TOMLValue.position`.
    var position: SourcePosition
    private(set) var slots: [Slot] = []
    private var slotIndex: [String: Int] = [:]

    init(origin: Origin, position: SourcePosition) {
        self.origin = origin
        self.position = position
    }

    func slot(_ key: String) -> Slot? {
        slotIndex[key].map { slots[$0] }
    }

    /// Adds a key that the caller checked is not yet present.
    func add(_ key: String, at keyPosition: SourcePosition, _ content: Content) {
        slotIndex[key] = slots.count
        slots.append(Slot(key: key, keyPosition: keyPosition, content: content))
    }

    func frozen() -> TOMLTable {
        TOMLTable(
            entries: slots.map { slot in
                TOMLTable.Entry(key: slot.key, keyPosition: slot.keyPosition, value: slot.content.frozen())
            },
            position: position
        )
    }
}

/// An array of tables under construction; never empty.
final class TableArrayNode {
    /// The first `[[header]]`'s position.
    let position: SourcePosition
    var elements: [TableNode]

    init(position: SourcePosition, first: TableNode) {
        self.position = position
        self.elements = [first]
    }
}

extension TableNode.Content {
    func frozen() -> TOMLValue {
        switch self {
        case .value(let value):
            value
        case .table(let node):
            TOMLValue(kind: .table(node.frozen()), position: node.position)
        case .tableArray(let array):
            TOMLValue(
                kind: .array(array.elements.map { TOMLValue(kind: .table($0.frozen()), position: $0.position) }),
                position: array.position
            )
        }
    }
}
