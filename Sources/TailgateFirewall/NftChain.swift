/// A chain; base chains carry their hook.
struct NftChain: Sendable, Equatable {
    /// The hook of a base chain: `type filter hook prerouting priority mangle; policy accept;`.
    struct Hook: Sendable, Equatable {
        let type: String
        /// NF_INET_PRE_ROUTING etc.
        let number: UInt32
        let priority: Int32
        /// NF_ACCEPT or NF_DROP.
        let policy: UInt32
        let text: String
    }

    let name: String
    let hook: Hook?
}
