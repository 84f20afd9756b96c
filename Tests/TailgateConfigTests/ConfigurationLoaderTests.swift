import Foundation
import Testing
@testable import TailgateConfig

private let cloudConfig = """
    [listeners.public]
    bind = ["0.0.0.0:443", "[::]:443"]
    default = "service"
    client_hello_timeout = "5s"
    max_connections = 4096

    [listeners.public.routes]
    "ops.example.com"   = "ops"
    "*.ops.example.com" = "ops"
    "app.example.com"   = "service"

    [listeners.from_cloud]
    bind = ["100.101.1.5:8888"]
    proxy_protocol_from = ["100.64.0.0/10"]
    default = "ops"

    [upstreams.ops]
    servers = ["127.0.0.1:8443"]
    send_proxy = "v2"
    connect_timeout = "3s"

    [upstreams.service]
    servers = ["192.168.0.10:443", "192.168.0.11:443"]
    send_proxy = "v2"
    idle_timeout = "1h"
    """

/// The errors loading `text` reports, as file:line:col lines (empty when it loads).
func errors(_ text: String) -> [String] {
    do {
        _ = try ConfigurationLoader.load(text: text, file: "t.toml")
        return []
    } catch {
        return error.errors.map(\.description)
    }
}

@Test func theIssueExampleLoads() throws {
    let config = try ConfigurationLoader.load(text: cloudConfig, file: "t.toml")
    #expect(config.listeners.map(\.name) == ["public", "from_cloud"])
    let public_ = config.listeners[0]
    #expect(public_.binds.count == 2)
    #expect(public_.maxConnections == 4096)
    #expect(public_.clientHelloTimeout == .seconds(5))
    #expect(public_.routes.route(serverName: "ops.example.com") == .exact(upstream: "ops"))
    #expect(public_.routes.route(serverName: "nope.test") == .fallback(upstream: "service"))
    #expect(config.listeners[1].proxyProtocolFrom.map(\.description) == ["100.64.0.0/10"])
    #expect(config.upstreams["service"]?.idleTimeout == .seconds(3600))
    #expect(config.upstreams["service"]?.servers.count == 2)
    #expect(config.upstreams["ops"]?.sendProxy == .v2)
    #expect(config.upstreams["ops"]?.connectTimeout == .seconds(3))
    #expect(config.drainTimeout == ConfigurationDefaults.drainTimeout)
}

@Test func aRouteToAnUnknownUpstreamIsAnErrorAtTheValue() {
    let text = """
        [listeners.a]
        bind = ["127.0.0.1:1"]
        [listeners.a.routes]
        "x.example" = "nowhere"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """
    #expect(errors(text) == [#"t.toml:4:15: listeners.a.routes."x.example": unknown upstream "nowhere" (defined: u)"#])
    let typo = text.replacingOccurrences(of: "nowhere", with: "uu")
    #expect(errors(typo) == [#"t.toml:4:15: listeners.a.routes."x.example": unknown upstream "uu"; did you mean "u"?"#])
}

@Test func everyErrorIsReportedAtOnceInFileOrder() {
    let text = """
        [listeners.a]
        bind = ["127.0.0.1:99999", "1.2.3.4"]
        client_hello_timeout = 5
        default = "u"
        max_conections = 10
        proxy_protocol_from = ["100.64.1.0/10", "banana"]
        [upstreams.u]
        servers = ["[::1]:443", "::1:443"]
        send_proxy = "v3"
        connect_timeout = "3 s"
        """
    let found = errors(text)
    #expect(found == [
        #"t.toml:2:9: listeners.a.bind[0]: "127.0.0.1:99999" has an invalid port; ports are 1–65535"#,
        #"t.toml:2:28: listeners.a.bind[1]: "1.2.3.4" has no port; write "address:port""#,
        #"t.toml:3:24: listeners.a.client_hello_timeout: expected a duration string like "5s" or "250ms", found integer (write "5s" for seconds)"#,
        "t.toml:5:1: listeners.a.max_conections: unknown key 'max_conections'; did you mean 'max_connections'?",
        #"t.toml:6:24: listeners.a.proxy_protocol_from[0]: "100.64.1.0/10" has bits set beyond the prefix length; did you mean "100.64.0.0/10"?"#,
        #"t.toml:6:41: listeners.a.proxy_protocol_from[1]: "banana" is not a valid address or prefix (e.g. "100.64.0.0/10", "fd7a:115c:a1e0::/48")"#,
        #"t.toml:8:25: upstreams.u.servers[1]: "::1:443": put IPv6 addresses in brackets, e.g. "[::1]:443""#,
        #"t.toml:9:14: upstreams.u.send_proxy: unknown value "v3"; expected one of "none", "v1", "v2""#,
        #"t.toml:10:19: upstreams.u.connect_timeout: invalid duration "3 s": it has an unknown unit ' s' (use ms, s, m, h, d)"#,
    ])
}

@Test func aSyntaxErrorPointsAtItsPosition() {
    let found = errors("[listeners.a]\nbind = [\"127.0.0.1:1\"\n")
    #expect(found.count == 1)
    #expect(found.first?.hasPrefix("t.toml:") == true)
    #expect(found.first?.contains("3:") == true || found.first?.contains("2:") == true)
}

@Test func duplicateAndOverlappingBindsAreRefused() {
    let text = """
        [listeners.a]
        bind = ["0.0.0.0:443"]
        default = "u"
        [listeners.b]
        bind = ["127.0.0.1:443", "0.0.0.0:443", "[::]:443"]
        default = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """
    let found = errors(text)
    #expect(found.count == 2)
    #expect(found[0].contains("127.0.0.1:443 overlaps 0.0.0.0:443 of listener 'a'"))
    #expect(found[1].contains("0.0.0.0:443 is bound twice (first by listener 'a' at 2:9)"))
}

/// A value of the wrong shape is one error, not that error plus "missing" or "empty" for the same key.
@Test func aBadValueIsReportedOnceNotAlsoAsMissingOrEmpty() {
    let bindAsString = errors("""
        [listeners.a]
        bind = "127.0.0.1:443"
        default = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """)
    #expect(bindAsString.count == 1, "\(bindAsString)")
    #expect(bindAsString.first?.contains("listeners.a.bind") == true, "\(bindAsString)")
    let serversAsString = errors("""
        [listeners.a]
        bind = ["127.0.0.1:443"]
        default = "u"
        [upstreams.u]
        servers = "127.0.0.1:2"
        """)
    #expect(serversAsString.count == 1, "\(serversAsString)")
    let arrayOfTables = errors("""
        [[listeners]]
        bind = ["127.0.0.1:443"]
        """)
    #expect(arrayOfTables.count == 1, "\(arrayOfTables)")
    #expect(arrayOfTables.first?.contains("nothing to do") == false, "\(arrayOfTables)")
    let badInterface = errors("""
        [firewall]
        tailnet_interfaces = ["abcdefghijklmnopq"]
        tcp_ports = [5432]
        """)
    #expect(badInterface.count == 1, "\(badInterface)")
    #expect(badInterface.first?.contains("is empty") == false, "\(badInterface)")
}

@Test func theHealthEndpointCannotShareAListenersAddress() {
    let text = """
        [health]
        listen = ["127.0.0.1:9180", "0.0.0.0:443"]
        [listeners.a]
        bind = ["127.0.0.1:9180", "10.0.0.1:443"]
        default = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """
    let found = errors(text)
    #expect(found.count == 2, "\(found)")
    #expect(found.first { $0.contains("2:11: health.listen: 127.0.0.1:9180 is bound twice (first by listener 'a' at 4:9)") } != nil, "\(found)")
    #expect(found.first { $0.contains("2:29: health.listen: 0.0.0.0:443 overlaps 10.0.0.1:443 of listener 'a'") } != nil, "\(found)")
}

@Test func aListenerWithoutRoutesOrDefaultIsRefused() {
    let text = """
        [listeners.a]
        bind = ["127.0.0.1:1"]
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """
    #expect(errors(text) == ["t.toml:1:1: listeners.a: listener has neither 'routes' nor 'default'; every connection would be closed"])
}

@Test func aMissingListenersSectionIsExplained() {
    #expect(errors("[upstreams.u]\nservers = [\"127.0.0.1:2\"]\n").first?.contains("nothing to do: add a [listeners.NAME] table") == true)
}

@Test func duplicateRoutesAfterNormalizationAreRefused() {
    let text = """
        [listeners.a]
        bind = ["127.0.0.1:1"]
        [listeners.a.routes]
        "App.Example.com" = "u"
        "app.example.com." = "u"
        "*.*.example.com" = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """
    let found = errors(text)
    #expect(found.count == 2)
    #expect(found[0].contains("route \"app.example.com\" is defined twice (first at 4:1)"))
    #expect(found[1].contains("invalid wildcard"))
}

@Test func hostnameServersAreKeptForResolutionAtLoad() throws {
    let text = """
        [listeners.a]
        bind = ["127.0.0.1:1"]
        default = "u"
        [upstreams.u]
        servers = ["Backend.Internal:8443", "[2001:db8::1]:443"]
        """
    let config = try ConfigurationLoader.load(text: text, file: "t.toml")
    #expect(config.upstreams["u"]?.servers.map(\.value.description) == ["backend.internal:8443", "[2001:db8::1]:443"])
}

@Test func theFirewallTableIsReadWithDefaults() throws {
    let text = """
        [firewall]
        tcp_ports = [5432, 6379, 9000, 9001, "3000-3010"]
        udp_ports = []
        action = "reject"
        check_interval = "10s"
        """
    let config = try ConfigurationLoader.load(text: text, file: "t.toml")
    let firewall = try #require(config.firewall)
    #expect(config.listeners.isEmpty)
    #expect(firewall.enabled)
    #expect(firewall.allow.map(\.description) == ["100.64.0.0/10", "fd7a:115c:a1e0::/48"])
    #expect(firewall.tailnetInterfaces == ["tailscale0"])
    #expect(firewall.trustedInterfaces == ["lo"])
    #expect(firewall.tcpPorts.map(\.description) == ["3000-3010", "5432", "6379", "9000", "9001"])
    #expect(firewall.udpPorts.isEmpty)
    #expect(firewall.action == .reject)
    #expect(firewall.checkInterval == .seconds(10))
}

@Test func badFirewallValuesAreErrorsAtTheirPosition() {
    let text = """
        [firewall]
        tailnet_interfaces = ["tailscale0", "bad name"]
        tcp_ports = [0, "10-5", "5432", "70000", 5432]
        allow = ["100.64.0.0/10", "fd7a::/8x"]
        action = "allow"
        """
    let found = errors(text)
    #expect(found.contains { $0.hasPrefix("t.toml:2:37: firewall.tailnet_interfaces[1]: \"bad name\" is not a valid interface name") })
    #expect(found.contains { $0.hasPrefix("t.toml:3:14: firewall.tcp_ports[0]: port 0 is out of range") })
    #expect(found.contains { $0.hasPrefix("t.toml:3:17: firewall.tcp_ports[1]: range \"10-5\" is reversed") })
    #expect(found.contains { $0.hasPrefix("t.toml:3:33: firewall.tcp_ports[3]: \"70000\" is not a port") })
    #expect(found.contains { $0.hasPrefix("t.toml:3:42: firewall.tcp_ports: ports 5432 and 5432 overlap") })
    #expect(found.contains { $0.hasPrefix("t.toml:4:27: firewall.allow[1]:") })
    #expect(found.contains { $0.hasPrefix("t.toml:5:10: firewall.action: unknown value \"allow\"") })
}

@Test func aTLSCheckTakesItsNameFromTheFirstExactRouteOrMustBeGivenOne() throws {
    let routes = """
        [listeners.public]
        bind = ["127.0.0.1:8443"]
        default = "fallback"
        [listeners.public.routes]
        "*.ops.example.com" = "ops"
        "ops.example.com"   = "ops"
        "*.app.example.com" = "app"

        """
    let config = try ConfigurationLoader.load(text: routes + """
        [upstreams.ops]
        servers = ["127.0.0.1:1"]
        check = "tls"
        [upstreams.app]
        servers = ["127.0.0.1:2"]
        check = "tls"
        check_sni = "Health.App.Example.com"
        check_ca = "/etc/tailgate/ca.pem"
        [upstreams.fallback]
        servers = ["127.0.0.1:3"]
        """, file: "t.toml")
    #expect(config.upstreams["ops"]?.check.serverName == "ops.example.com")
    #expect(config.upstreams["app"]?.check.serverName == "health.app.example.com")
    #expect(config.upstreams["app"]?.check.caFile?.value == "/etc/tailgate/ca.pem")
    // Only a wildcard or the default points at it: no name to verify, so the check would accept any trusted certificate.
    let found = errors(routes + """
        [upstreams.ops]
        servers = ["127.0.0.1:1"]
        [upstreams.app]
        servers = ["127.0.0.1:2"]
        check = "tls"
        check_ca = "ca.pem"
        check_interval = "50ms"
        [upstreams.fallback]
        servers = ["127.0.0.1:3"]
        check   = "tls"
        """)
    #expect(found == [
        "t.toml:12:9: upstreams.app.check: a \"tls\" check verifies the certificate's name, and no exact route points here to take it from: set check_sni",
        "t.toml:13:12: upstreams.app.check_ca: \"ca.pem\" is not an absolute path",
        "t.toml:14:18: upstreams.app.check_interval: duration \"50ms\" is too short (at least 100ms)",
        "t.toml:17:11: upstreams.fallback.check: a \"tls\" check verifies the certificate's name, and no exact route points here to take it from: set check_sni",
    ])
    #expect(errors("[firewall]\ncheck_interval = \"500ms\"\n") == [
        "t.toml:2:18: firewall.check_interval: duration \"500ms\" is too short (at least 1s)",
    ])
}

@Test func anUnquotedHostnameRouteKeySaysToQuoteIt() {
    let found = errors("""
        [listeners.b]
        bind = ["127.0.0.1:1"]
        [listeners.b.routes]
        ops.example.com = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """)
    #expect(found == [
        "t.toml:4:1: listeners.b.routes.\"ops\": expected an upstream name (a string), found table; quote a hostname key: \"ops.example.com\" = \"u\"",
    ])
}

@Test func failTimeoutDefaultsToTenSecondsAndZeroTurnsItOff() throws {
    func upstream(_ extra: String) throws -> UpstreamConfiguration? {
        try ConfigurationLoader.load(text: """
            [listeners.a]
            bind = ["127.0.0.1:1"]
            default = "u"
            [upstreams.u]
            servers = ["127.0.0.1:2"]
            \(extra)
            """, file: "t.toml").upstreams["u"]
    }
    #expect(try upstream("")?.failTimeout == .seconds(10))
    #expect(try upstream("fail_timeout = \"0s\"")?.failTimeout == .zero)
    #expect(try upstream("fail_timeout = \"1m\"")?.failTimeout == .seconds(60))
    #expect(errors("[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\nfail_timeout = 10\n") == [
        "t.toml:6:16: upstreams.u.fail_timeout: expected a duration string like \"5s\" or \"250ms\", found integer (write \"10s\" for seconds)",
    ])
}

@Test func backupServersAreReadAndMayNotRepeatAServer() throws {
    let config = try ConfigurationLoader.load(text: """
        [listeners.a]
        bind = ["127.0.0.1:1"]
        default = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        backup = ["127.0.0.1:3", "Spare.Internal:443"]
        """, file: "t.toml")
    let upstream = try #require(config.upstreams["u"])
    #expect(upstream.backup.map(\.value.description) == ["127.0.0.1:3", "spare.internal:443"])
    #expect(upstream.allServers.map(\.value.description) == ["127.0.0.1:2", "127.0.0.1:3", "spare.internal:443"])
    #expect(try ConfigurationLoader.load(text: "[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\n", file: "t.toml")
        .upstreams["u"]?.backup.isEmpty == true)
    #expect(errors("[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\nbackup = [\"127.0.0.1:3\", \"127.0.0.1:2\"]\n") == [
        "t.toml:6:26: upstreams.u.backup[1]: 127.0.0.1:2 is already in 'servers'; a server is either a backup or not",
    ])
    #expect(errors("[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\nbackup = \"127.0.0.1:3\"\n").count == 1)
}

@Test func anHTTPSCheckTakesAPathAndItsNameLikeATLSCheck() throws {
    func load(_ extra: String) throws -> UpstreamCheckConfiguration? {
        try ConfigurationLoader.load(text: """
            [listeners.a]
            bind = ["127.0.0.1:1"]
            [listeners.a.routes]
            "app.example.com" = "u"
            [upstreams.u]
            servers = ["127.0.0.1:2"]
            \(extra)
            """, file: "t.toml").upstreams["u"]?.check
    }
    let plain = try #require(try load("check = \"https\""))
    #expect(plain.kind == .https && plain.path == "/" && plain.serverName == "app.example.com" && plain.kind.usesTLS)
    #expect(try load("check = \"https\"\ncheck_path = \"/healthz?full=1\"")?.path == "/healthz?full=1")
    let base = "[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\n"
    #expect(errors(base + "check = \"https\"\ncheck_sni = \"app.example.com\"\ncheck_path = \"healthz\"\n") == [
        "t.toml:8:14: upstreams.u.check_path: \"healthz\" is not a path: it must start with / and hold no spaces",
    ])
    #expect(errors(base + "check = \"https\"\n").first?.contains("a \"https\" check verifies the certificate's name") == true)
    let warned = try ConfigurationLoader.load(text: base + "check = \"tls\"\ncheck_sni = \"app.example.com\"\ncheck_path = \"/x\"\n", file: "t.toml")
    #expect(warned.warnings.map(\.description) == ["t.toml:8:14: upstreams.u.check_path: warning: has no effect unless check = \"https\""])
}

@Test func whatIsValidButProbablyNotMeantIsAWarning() throws {
    let config = try ConfigurationLoader.load(text: """
        [listeners.a]
        bind = ["127.0.0.1:1"]
        default = "u"
        [listeners.a.routes]
        "10.0.0.1" = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        check = "tcp"
        check_sni = "x.example.com"
        [firewall]
        allow = []
        tcp_ports = [5432]
        [upstreams.v]
        servers = ["127.0.0.1:3"]
        check = "tls"
        check_sni = "v.example.com"
        """, file: "t.toml")
    #expect(config.warnings.map(\.description) == [
        "t.toml:5:1: listeners.a.routes.\"10.0.0.1\": warning: clients never send an IP address as SNI (RFC 6066), so this route never matches",
        "t.toml:9:13: upstreams.u.check_sni: warning: has no effect unless check = \"tls\" or \"https\"",
        "t.toml:11:9: firewall.allow: warning: no tailnet source is allowed: only trusted_interfaces reach the restricted ports",
    ])
    let empty = try ConfigurationLoader.load(text: "[firewall]\n", file: "t.toml")
    #expect(empty.warnings.map(\.description) == [
        "t.toml:1:1: firewall: warning: restricts no port: list tcp_ports or udp_ports (the empty table is still installed, which needs CAP_NET_ADMIN)",
    ])
    #expect(try ConfigurationLoader.load(text: cloudConfig, file: "t.toml").warnings.isEmpty)
}

@Test func aTCPListenerTakesOnlyADefault() throws {
    let good = try ConfigurationLoader.load(text: """
        [listeners.ssh]
        bind = ["0.0.0.0:2222"]
        protocol = "tcp"
        default = "ops"
        [upstreams.ops]
        servers = ["100.101.1.5:22"]
        """, file: "t.toml")
    #expect(good.listeners.first?.listenerProtocol == .tcp)
    #expect(try ConfigurationLoader.load(text: "[listeners.a]\nbind = [\"127.0.0.1:1\"]\ndefault = \"u\"\n[upstreams.u]\nservers = [\"127.0.0.1:2\"]\n",
                                         file: "t.toml").listeners.first?.listenerProtocol == .tls)
    #expect(errors("""
        [listeners.ssh]
        bind = ["0.0.0.0:2222"]
        protocol = "tcp"
        default = "u"
        [listeners.ssh.routes]
        "ops.example.com" = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """) == ["t.toml:5:1: listeners.ssh.routes: a tcp listener has no server name to route by: every connection goes to 'default'; remove 'routes' (or use protocol = \"tls\")"])
    #expect(errors("""
        [listeners.ssh]
        bind = ["0.0.0.0:2222"]
        protocol = "tcp"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """) == ["t.toml:1:1: listeners.ssh: a tcp listener needs 'default': the upstream every connection goes to"])
    #expect(errors("""
        [listeners.web]
        bind = ["0.0.0.0:80"]
        protocol = "smtp"
        default = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """) == ["t.toml:3:12: listeners.web.protocol: unknown value \"smtp\"; expected one of \"tls\", \"tcp\", \"http\""])
}

@Test func anHTTPListenerTakesRedirectsAndARequestTimeout() throws {
    let configuration = try ConfigurationLoader.load(text: """
        [listeners.web]
        bind = ["0.0.0.0:80"]
        protocol = "http"
        request_timeout = "15s"
        default = "home"
        [listeners.web.routes]
        "app.example.com" = { upstream = "home", redirect = "https" }
        "*.example.org" = "home"
        [upstreams.home]
        servers = ["100.101.1.5:80"]
        """, file: "t.toml")
    let listener = try #require(configuration.listeners.first)
    #expect(listener.listenerProtocol == .http && listener.clientHelloTimeout == .seconds(15))
    #expect(listener.redirectsToHTTPS == ["app.example.com"])
    let everything = try ConfigurationLoader.load(text: """
        [listeners.web]
        bind = ["0.0.0.0:80"]
        protocol = "http"
        redirect = "https"
        default = "home"
        [upstreams.home]
        servers = ["100.101.1.5:80"]
        """, file: "t.toml")
    #expect(everything.listeners.first?.redirectsToHTTPS == ["default", "none"])
    #expect(errors("""
        [listeners.tls]
        bind = ["0.0.0.0:443"]
        request_timeout = "5s"
        [listeners.tls.routes]
        "app.example.com" = { upstream = "home", redirect = "https" }
        [upstreams.home]
        servers = ["100.101.1.5:80"]
        """) == [
        "t.toml:3:19: listeners.tls.request_timeout: 'request_timeout' is for protocol = \"http\"; this listener's is 'client_hello_timeout'",
        "t.toml:5:53: listeners.tls.routes.\"app.example.com\".redirect: a redirect needs protocol = \"http\" (a TLS or TCP client cannot be answered with one)",
    ])
}

/// Every configuration in docs/deployment.md loads: the guide an operator copies from stays true.
@Test func theDeploymentGuidesConfigurationsLoad() throws {
    let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
    let text = try String(contentsOfFile: "/\(root)/docs/deployment.md", encoding: .utf8)
    let blocks = text.components(separatedBy: "```toml\n").dropFirst().map { $0.components(separatedBy: "\n```")[0] }
    #expect(blocks.count >= 2)
    for block in blocks {
        #expect(throws: Never.self, "\(block)") { _ = try ConfigurationLoader.load(text: block, file: "deployment.md") }
    }
}
