import Testing
@testable import TailgateConfig

private let table = RouteTable(
    routes: [
        (.exact("ops.example.com"), "ops"),
        (.wildcard(suffix: ".example.com"), "generic"),
        (.wildcard(suffix: ".ops.example.com"), "ops-wild"),
    ],
    defaultUpstream: "fallback"
)

@Test func exactBeatsWildcard() {
    #expect(table.route(serverName: "ops.example.com") == .exact(upstream: "ops"))
}

@Test func theLongestWildcardSuffixWins() {
    #expect(table.route(serverName: "a.ops.example.com") == .wildcard(pattern: "*.ops.example.com", upstream: "ops-wild"))
    #expect(table.route(serverName: "a.b.ops.example.com").upstream == "ops-wild")
    #expect(table.route(serverName: "a.example.com").upstream == "generic")
}

@Test func aWildcardDoesNotMatchItsOwnSuffix() {
    #expect(table.route(serverName: "example.com") == .fallback(upstream: "fallback"))
}

@Test func namesAreComparedCaseInsensitivelyWithoutTrailingDot() {
    #expect(table.route(serverName: "OPS.Example.COM.") == .exact(upstream: "ops"))
}

@Test func noNameGoesToTheDefaultOrNowhere() {
    #expect(table.route(serverName: nil) == .fallback(upstream: "fallback"))
    let strict = RouteTable(routes: [(.exact("a.b"), "x")], defaultUpstream: nil)
    #expect(strict.route(serverName: nil) == RouteTable.Match.none)
    #expect(strict.route(serverName: "c.d") == RouteTable.Match.none)
}

