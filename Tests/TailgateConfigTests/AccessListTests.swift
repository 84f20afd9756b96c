import Testing
@testable import TailgateConfig

/// Address sets against the plain prefix test, and allow/deny lists as the loader reads them.
@Suite struct AccessListTests {
    static func network(_ text: String) -> IPNetwork { try! IPNetwork.parse(text) }
    static func address(_ text: String) -> IPAddress { IPAddress(text)! }

    /// Random prefixes and addresses of both families: the ranges answer as a scan of the prefixes does.
    @Test func membershipMatchesAScanOfThePrefixes() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            var networks: [IPNetwork] = []
            for _ in 0..<(round * 10 + 1) {
                let v4 = "10.\(Int.random(in: 0...3, using: &generator)).\(Int.random(in: 0...255, using: &generator)).0/\(Int.random(in: 16...24, using: &generator))"
                let v6 = "fd00:\(String(Int.random(in: 0...3, using: &generator), radix: 16))::/\(Int.random(in: 16...64, using: &generator))"
                for text in [v4, v6] {
                    if let network = try? IPNetwork.parse(text) { networks.append(network) }
                }
            }
            let set = AddressSet(networks)
            for _ in 0..<500 {
                let candidates = [
                    Self.address("10.\(Int.random(in: 0...4, using: &generator)).\(Int.random(in: 0...255, using: &generator)).\(Int.random(in: 0...255, using: &generator))"),
                    Self.address("fd00:\(String(Int.random(in: 0...4, using: &generator), radix: 16))::\(Int.random(in: 0...9, using: &generator))"),
                ]
                for candidate in candidates {
                    #expect(set.contains(candidate) == networks.contains { $0.contains(candidate) }, "\(candidate) in \(networks)")
                }
            }
        }
    }

    @Test func unionIntersectionAndDifferenceHoldAtTheEdges() {
        let a = AddressSet([Self.network("10.0.0.0/24"), Self.network("10.0.2.0/24")])
        let b = AddressSet([Self.network("10.0.0.128/25"), Self.network("10.0.1.0/24")])
        let union = AddressSet.union([a, b])
        #expect(union == AddressSet([Self.network("10.0.0.0/23"), Self.network("10.0.2.0/24")]), "adjacent ranges merge")
        #expect(a.intersection(b) == AddressSet([Self.network("10.0.0.128/25")]))
        let difference = a.subtracting(b)
        #expect(difference.contains(Self.address("10.0.0.127")) && !difference.contains(Self.address("10.0.0.128")))
        #expect(difference.contains(Self.address("10.0.2.255")))
        #expect(AddressSet.everything.subtracting(.everything).isEmpty)
        #expect(AddressSet.everything.contains(Self.address("255.255.255.255")) && AddressSet.everything.contains(Self.address("::1")))
        #expect(AddressSet([Self.network("::ffff:192.0.2.0/120")]).isEmpty == false)
        #expect(AddressSet([Self.network("0.0.0.0/0")]).contains(Self.address("::ffff:192.0.2.1")), "IPv4-mapped addresses are IPv4")
    }

    @Test func aTenThousandPrefixListAnswersLikeAScan() {
        let networks = (0..<10_000).map { Self.network("198.\(18 + $0 / 5_000).\(($0 / 20) % 250).\(($0 % 20) * 8)/29") }
        let set = AddressSet(networks)
        #expect(set.rangeCount <= 10_000)
        for probe in ["198.18.0.0", "198.18.0.159", "198.18.0.160", "198.19.249.159", "198.20.0.0", "197.255.255.255"] {
            #expect(set.contains(Self.address(probe)) == networks.contains { $0.contains(Self.address(probe)) }, "\(probe)")
        }
    }

    @Test func denyBeatsAllowAndARefusalNamesTheEntry() {
        let rule = AccessRule(
            scope: "route ops.example.com",
            allow: [.init(written: "@admins", addresses: AddressSet([Self.network("203.0.113.0/24")]))],
            deny: [.init(written: "203.0.113.66", addresses: AddressSet([Self.network("203.0.113.66/32")]))]
        )
        #expect(rule.refusal(Self.address("203.0.113.5")) == nil)
        #expect(rule.refusal(Self.address("203.0.113.66")) == "deny 203.0.113.66 (route ops.example.com)")
        #expect(rule.refusal(Self.address("198.51.100.1")) == "not in allow (route ops.example.com)")
        #expect(AccessRule(scope: "listener").refusal(Self.address("198.51.100.1")) == nil)
    }

    static let listsText = """
        [lists]
        admins = ["203.0.113.7", "2001:db8:7::/48"]
        scanners = { file = "scanners.txt" }

        [listeners.public]
        bind = ["0.0.0.0:443"]
        deny = ["@scanners"]
        default = "app"
        [listeners.public.routes]
        "ops.example.com" = { upstream = "ops", allow = ["@admins", "100.64.0.0/10"] }
        "app.example.com" = "app"

        [upstreams.ops]
        servers = ["100.101.1.5:8888"]
        [upstreams.app]
        servers = ["100.101.1.6:8888"]
        """

    static func load(_ text: String, files: [String: String]) throws(ConfigurationErrors) -> TailgateConfiguration {
        try ConfigurationLoader.load(bytes: Array(text.utf8), file: "t.toml", readListFile: { name in
            guard let content = files[name] else { return .failure(ListFileError("cannot open: No such file or directory")) }
            return .success((Array(content.utf8), "/etc/tailgate/\(name)"))
        })
    }

    @Test func namedListsFilesAndRouteTablesLoad() throws {
        let configuration = try Self.load(Self.listsText, files: ["scanners.txt": "# scanners\n198.51.100.0/24  # one\n\n2001:db8:bad::/48\n"])
        let listener = try #require(configuration.listeners.first)
        #expect(listener.access.refusal(Self.address("198.51.100.9")) == "deny @scanners (listener)")
        #expect(listener.access.refusal(Self.address("203.0.113.7")) == nil)
        let ops = try #require(listener.routeAccess["ops.example.com"])
        #expect(ops.refusal(Self.address("203.0.113.7")) == nil)
        #expect(ops.refusal(Self.address("100.64.3.4")) == nil)
        #expect(ops.refusal(Self.address("192.0.2.1")) == "not in allow (route ops.example.com)")
        #expect(listener.routeAccess["app.example.com"] == nil)
        #expect(listener.routes.route(serverName: "ops.example.com") == .exact(upstream: "ops"))
        #expect(configuration.warnings.isEmpty, "\(configuration.warnings)")
    }

    @Test func listMistakesAreErrorsAtTheirLineInTheirFile() {
        #expect(throws: ConfigurationErrors.self) { try Self.load(Self.listsText, files: [:]) }
        do {
            _ = try Self.load(Self.listsText, files: ["scanners.txt": "198.51.100.0/24\n  not-an-address\n10.0.0.1/8\n"])
            Issue.record("loaded")
        } catch {
            #expect(error.errors.map(\.description) == [
                "/etc/tailgate/scanners.txt:2:3: \"not-an-address\" is not a valid address or prefix",
                "/etc/tailgate/scanners.txt:3:1: \"10.0.0.1/8\" is not a valid address or prefix",
            ])
        }
        do {
            _ = try Self.load(Self.listsText.replacingOccurrences(of: "[\"@admins\", ", with: "[\"@admin\", "), files: ["scanners.txt": ""])
            Issue.record("loaded")
        } catch {
            #expect(error.errors.map(\.description) == [
                "t.toml:10:50: listeners.public.routes.\"ops.example.com\".allow[0]: unknown list \"@admin\" (declared: @admins, @scanners)",
            ])
        }
        do {
            _ = try ConfigurationLoader.load(text: Self.listsText, file: "t.toml")
            Issue.record("loaded")
        } catch {
            #expect(error.errors.map(\.description) == ["t.toml:3:21: lists.scanners.file: list files are not read here"])
        }
    }

    @Test func checkWarnsAboutRulesThatShutOutMoreThanMeant() throws {
        let configuration = try Self.load("""
            [lists]
            home = ["100.64.0.0/10"]

            [listeners.from_cloud]
            bind = ["100.101.1.5:8888"]
            proxy_protocol_from = ["100.101.1.1"]
            deny = ["100.64.0.0/10"]
            default = "app"
            [listeners.from_cloud.routes]
            "ops.example.com" = { upstream = "app", allow = ["@home"] }

            [upstreams.app]
            servers = ["127.0.0.1:8443"]
            """, files: [:])
        let warnings = configuration.warnings.map(\.description)
        #expect(warnings.contains("t.toml:4:1: listeners.from_cloud: warning: deny 100.64.0.0/10 (listener) covers a peer this listener trusts for PROXY headers (proxy_protocol_from): its own connections, such as health checks with PROXY LOCAL, are judged by its address and refused"), "\(warnings)")
        #expect(warnings.contains("t.toml:10:1: listeners.from_cloud.routes.\"ops.example.com\": warning: route \"ops.example.com\" is unreachable: no address passes both the listener's and the route's allow and deny lists"), "\(warnings)")
    }
}
