/// A rule: its chain, the line `nft list` prints for it, and its expressions.
struct NftRule: Sendable, Equatable {
    let chain: String
    let text: String
    let expressions: [NftExpression]
}
