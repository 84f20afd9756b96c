import Testing

@testable import TailgateAgent

/// The status page rendered from a snapshot made by hand: worst first, escaped, and small whatever the
/// configuration's size.
@Suite struct StatusPageRenderingTests {
    static func snapshot(routes: Int = 2, servers: [(String, String)] = [("192.0.2.1:443", "up")]) -> StatusSnapshot {
        let now: Int64 = 1_800_000_000
        let listener = StatusSnapshot.Listener(
            name: "public", listenerProtocol: "tls", binds: ["0.0.0.0:443"], active: 3, limit: 4096, accepted: 120, denied: 1, rate: 2.5,
            refusals: [(outcome: "bad_client_hello", count: 4)], defaultUpstream: "web",
            routes: (0..<routes).map { (match: "host\($0).example.com", upstream: "web") }
        )
        let upstreamServers = servers.map { address, state in
            StatusSnapshot.Server(address: address, state: state, active: 1, bytes: 2_048, certificateNotAfter: now + 5 * 86_400)
        }
        return StatusSnapshot(
            version: "1.0", started: "2027-01-15T08:00:00.000Z", uptimeSeconds: 3_700, now: now, configPath: "/etc/tailgate/tailgate.toml",
            generation: 4, hash: String(repeating: "ab", count: 32), shortHash: "abababababab", notReadyReasons: [], lastReload: nil,
            listeners: [listener],
            upstreams: [
                StatusSnapshot.Upstream(name: "api", sendProxy: "v2", check: "tls", servers: [StatusSnapshot.Server(address: "192.0.2.9:443", state: "up", active: 0, bytes: 0)]),
                StatusSnapshot.Upstream(name: "web", sendProxy: "v2", check: "tls", servers: upstreamServers),
            ],
            departed: [], firewall: StatusSnapshot.Firewall(configured: false, enabled: false, inSync: false, repairs: 0, counters: [], drops: []),
            bans: nil,
            recentEnds: [StatusSnapshot.RecentEnd(time: "2027-01-15T09:00:00Z", listener: "public", client: "203.0.113.5:4000",
                                                  serverName: "<script>alert(1)</script>", outcome: "no_route", reason: nil)]
        )
    }

    @Test func aDownServerAndItsUpstreamComeFirstWithTheCertificateInRed() {
        let page = StatusPage.html(Self.snapshot(servers: [("192.0.2.1:443", "up"), ("192.0.2.2:443", "down")]))
        // "web" has a down server: it comes before "api", and its down server before its up one.
        let web = page.firstRange(of: "<b>web</b>")!.lowerBound, api = page.firstRange(of: "<b>api</b><br>")!.lowerBound
        #expect(web < api)
        let down = page.firstRange(of: "192.0.2.2:443</code></div></td><td data-label=\"State\">")!.lowerBound
        let up = page.firstRange(of: "192.0.2.1:443</code></div></td><td data-label=\"State\">")!.lowerBound
        #expect(down < up)
        #expect(page.contains("Needs attention") && page.contains("is down"))
        #expect(page.contains("class=\"cert bad\">5 days<"))
    }

    @Test func whatClientsSentIsEscaped() {
        let page = StatusPage.html(Self.snapshot())
        #expect(!page.contains("<script>alert"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        // The only script is the page's own, which the policy pins by hash.
        #expect(page.components(separatedBy: "<script>").count == 2)
        #expect(StatusPage.contentSecurityPolicy.contains(StatusPageAssets.scriptHash))
    }

    @Test func thePageStaysSmallWithThousandsOfRoutes() {
        let servers = (0..<40).map { ("198.51.100.\($0):443", $0 % 7 == 0 ? "down" : "up") }
        let page = StatusPage.html(Self.snapshot(routes: 5_000, servers: servers))
        #expect(page.utf8.count < 50 * 1024, "\(page.utf8.count) bytes")
        #expect(page.contains("and \(5_000 - StatusPage.routesShown) more"))
        #expect(page.contains("<summary>5001</summary>"))
    }

    @Test func theShapeNamesWhatTheScriptComparesInTheSameOrder() {
        var snapshot = Self.snapshot(servers: [("192.0.2.1:443", "up"), ("192.0.2.2:443", "down")])
        // generation|ready|last reload ok|states per upstream|departed|firewall in sync|recent errors
        #expect(StatusPage.shape(snapshot) == "4|true||up;up,down|0|false|1")
        snapshot.notReadyReasons = ["stopping: draining connections"]
        #expect(StatusPage.shape(snapshot).hasPrefix("4|false|"))
    }
}
