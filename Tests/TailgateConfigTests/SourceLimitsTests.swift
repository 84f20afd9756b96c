import Testing
@testable import TailgateConfig

/// `max_connections_per_source`, `connection_rate_per_source` and the prefixes that name a source.
@Suite struct SourceLimitsTests {
    static func load(_ listenerKeys: String) throws(ConfigurationErrors) -> TailgateConfiguration {
        try ConfigurationLoader.load(bytes: Array("""
            [listeners.public]
            bind = ["0.0.0.0:443"]
            default = "app"
            \(listenerKeys)
            [upstreams.app]
            servers = ["100.101.1.6:8443"]
            """.utf8), file: "t.toml")
    }

    static func errors(_ listenerKeys: String) -> [String] {
        do {
            _ = try load(listenerKeys)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func limitsLoadAndAreOffByDefault() throws {
        let off = try #require(try Self.load("").listeners.first)
        #expect(!off.sourceLimits.isEnabled)
        let on = try #require(try Self.load("""
            max_connections_per_source = 32
            connection_rate_per_source = "60/10s"
            source_prefix_ipv6 = 56
            """).listeners.first)
        #expect(on.sourceLimits == SourceLimits(maxConnections: 32, rate: .init(count: 60, window: .seconds(10)), ipv4Prefix: 32, ipv6Prefix: 56))
    }

    @Test func ratesParseOrSayWhy() throws {
        #expect(try SourceLimits.parseRate("5/s").get() == .init(count: 5, window: .seconds(1)))
        #expect(try SourceLimits.parseRate("100/1m").get() == .init(count: 100, window: .seconds(60)))
        #expect(try SourceLimits.parseRate(" 60 / 10s ").get() == .init(count: 60, window: .seconds(10)))
        for (text, error) in [("60", SourceLimits.RateError.shape), ("0/10s", .shape), ("x/10s", .shape), ("60/", .window), ("60/10", .window),
                              ("60/500ms", .windowRange), ("60/2h", .windowRange), ("2000000/1m", .countTooLarge)] {
            #expect(throws: error, "\(text)") { try SourceLimits.parseRate(text).get() }
        }
    }

    @Test func badValuesAreErrorsAtTheirLine() {
        #expect(Self.errors("connection_rate_per_source = \"60 per 10s\"") == [
            "t.toml:4:30: listeners.public.connection_rate_per_source: invalid rate \"60 per 10s\": expected \"COUNT/DURATION\" with a count of at least 1, such as \"60/10s\" or \"5/s\"",
        ])
        #expect(Self.errors("max_connections_per_source = 0") == ["t.toml:4:30: listeners.public.max_connections_per_source: 0 is out of range 1…1000000"])
        #expect(Self.errors("max_connections_per_source = 4\nsource_prefix_ipv6 = 8") == ["t.toml:5:22: listeners.public.source_prefix_ipv6: 8 is out of range 16…128"])
    }

    @Test func pointlessSettingsAreWarnedAbout() throws {
        let prefixAlone = try Self.load("source_prefix_ipv6 = 48").warnings.map(\.description)
        #expect(prefixAlone.contains { $0.hasPrefix("t.toml:4:22: listeners.public.source_prefix_ipv6: warning: no per-source limit is set") }, "\(prefixAlone)")
        let tooHigh = try Self.load("max_connections = 10\nmax_connections_per_source = 10").warnings.map(\.description)
        #expect(tooHigh == ["t.toml:5:30: listeners.public.max_connections_per_source: warning: max_connections_per_source 10 is not below the listener's max_connections 10: one source can still take every slot"])
    }

    @Test func sourcesAreAddressesOrPrefixes() {
        func key(_ text: String, v4: Int = 32, v6: Int = 64) -> SourceKey { SourceKey(IPAddress(text)!, ipv4Prefix: v4, ipv6Prefix: v6) }
        #expect(key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9"), "one /64")
        #expect(key("2001:db8:1:2::1") != key("2001:db8:1:3::1"))
        #expect(key("2001:db8:1:2::1").description == "2001:db8:1:2::/64")
        #expect(key("2001:db8:1:2::1", v6: 128).description == "2001:db8:1:2::1")
        #expect(key("2001:db8:1:2::1", v6: 48) == key("2001:db8:1:ff::1", v6: 48))
        #expect(key("2001:db8:1:2::1", v6: 100) != key("2001:db8:1:2::1:0:0", v6: 100))
        #expect(key("203.0.113.7") != key("203.0.113.8"))
        #expect(key("203.0.113.7").description == "203.0.113.7")
        #expect(key("203.0.113.7", v4: 24) == key("203.0.113.200", v4: 24))
        #expect(key("203.0.113.7", v4: 24).description == "203.0.113.0/24")
        #expect(key("::ffff:203.0.113.7") == key("203.0.113.7"), "an IPv4-mapped address is its IPv4 source")
        #expect(key("::ffff:cb00:7107", v6: 64) == key("203.0.113.7"))
    }
}

/// A listener's `ban` rule.
@Suite struct BanRuleTests {
    @Test func aRuleLoadsWithItsOffensesOrSaysWhatIsMissing() throws {
        let configuration = try ConfigurationLoader.load(text: """
            [bans]
            enabled = true
            [listeners.public]
            bind = ["0.0.0.0:443"]
            default = "app"
            ban = { after = 10, within = "1m", for = "10m", max = "1d", on = ["not_tls", "denied"] }
            [upstreams.app]
            servers = ["100.101.1.6:8443"]
            """, file: "t.toml")
        #expect(configuration.listeners.first?.banRule == BanRule(
            after: 10, within: .seconds(60), duration: .seconds(600), max: .seconds(86_400), offenses: [.notTLS, .denied]
        ))
        #expect(BanRule(after: 1, within: .seconds(1), duration: .seconds(600), max: .seconds(86_400)).length(afterEarlierBans: 3) == .seconds(4_800))
        #expect(SourceLimitsTests.errors("ban = { after = 10, within = \"1m\" }") == [
            "t.toml:4:7: listeners.public.ban: a ban rule needs 'after', 'within' and 'for', e.g. { after = 10, within = \"1m\", for = \"10m\", max = \"1d\" }",
        ])
        #expect(SourceLimitsTests.errors("ban = { after = 1, within = \"1m\", for = \"1h\", on = [\"spam\"] }").first?.contains(
            "listeners.public.ban.on[0]: expected one of \"over_source_limit\", \"not_tls\", \"hello_timeout\", \"denied\", \"bad_request\""
        ) == true)
        let warnings = try SourceLimitsTests.load("ban = { after = 1, within = \"1m\", for = \"1h\" }").warnings.map(\.description)
        #expect(warnings == ["t.toml:4:7: listeners.public.ban: warning: this ban rule bans nobody: [bans] is not enabled (enabled = true)"])
    }
}
