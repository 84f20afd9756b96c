/// Who may use a listener or a route: `allow` and `deny` lists of prefixes and named lists (`@admins`).
///
/// Deny beats allow; with an allow list, everyone it does not name is refused. Each entry is kept apart so
/// that a refusal names the entry that caused it.
public struct AccessRule: Sendable {
    /// One entry as written (`"@admins"`, `"203.0.113.0/24"`) and the addresses it stands for.
    public struct Entry: Sendable {
        public let written: String
        public let addresses: AddressSet
    }

    /// Where the rule is written, for refusals: `listener` or `route ops.example.com`.
    public var scope: String
    /// nil: no allow list (everyone not denied).
    public var allow: [Entry]?
    public var deny: [Entry]

    public init(scope: String, allow: [Entry]? = nil, deny: [Entry] = []) {
        self.scope = scope
        self.allow = allow
        self.deny = deny
    }

    /// A rule that admits everyone.
    public var isOpen: Bool { allow == nil && deny.isEmpty }

    /// nil when `address` may pass; else why not, for the log (`deny @scanners (listener)`).
    public func refusal(_ address: IPAddress) -> String? {
        for entry in deny where entry.addresses.contains(address) {
            return "deny \(entry.written) (\(scope))"
        }
        guard let allow else { return nil }
        if allow.contains(where: { $0.addresses.contains(address) }) { return nil }
        return "not in allow (\(scope))"
    }

    /// The addresses the rule lets pass.
    public var admitted: AddressSet {
        var result = allow.map { entries in AddressSet.union(entries.map(\.addresses)) } ?? .everything
        for entry in deny { result = result.subtracting(entry.addresses) }
        return result
    }
}
