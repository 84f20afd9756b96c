import Testing
@testable import TailgateConfig
@testable import TailgateFirewall

@Test func theExampleConfigurationPlansTheDesignsTable() {
    let ruleset = FirewallRuleset(Configurations.example)
    let expected = """
        table inet tailgate {
        \tcounter allowed {
        \t\tpackets 0 bytes 0
        \t}

        \tcounter dropped {
        \t\tpackets 0 bytes 0
        \t}

        \tcounter banned {
        \t\tpackets 0 bytes 0
        \t}

        \tcounter dropped_tcp_5432 {
        \t\tpackets 0 bytes 0
        \t}

        \tcounter dropped_tcp_6379 {
        \t\tpackets 0 bytes 0
        \t}

        \tcounter dropped_udp_9000 {
        \t\tpackets 0 bytes 0
        \t}

        \tset trusted_ifaces {
        \t\ttype ifname
        \t\telements = { "lo" }
        \t}

        \tset tailnet_ifaces {
        \t\ttype ifname
        \t\telements = { "tailscale0" }
        \t}

        \tset tailnet4 {
        \t\ttype ipv4_addr
        \t\tflags interval
        \t\telements = { 100.64.0.0/10 }
        \t}

        \tset tailnet6 {
        \t\ttype ipv6_addr
        \t\tflags interval
        \t\telements = { fd7a:115c:a1e0::/48 }
        \t}

        \tset tcp_ports {
        \t\ttype inet_service
        \t\telements = { 5432, 6379 }
        \t}

        \tset udp_ports {
        \t\ttype inet_service
        \t\telements = { 9000 }
        \t}

        \tset shield_tcp_ports {
        \t\ttype inet_service
        \t}

        \tset shield_udp_ports {
        \t\ttype inet_service
        \t}

        \tset ban4 {
        \t\ttype ipv4_addr
        \t\tsize 65536
        \t\tflags timeout
        \t}

        \tset ban4_net {
        \t\ttype ipv4_addr
        \t\tsize 65536
        \t\tflags interval,timeout
        \t}

        \tset ban6 {
        \t\ttype ipv6_addr
        \t\tsize 65536
        \t\tflags timeout
        \t}

        \tset ban6_net {
        \t\ttype ipv6_addr
        \t\tsize 65536
        \t\tflags interval,timeout
        \t}

        \tchain prerouting {
        \t\ttype filter hook prerouting priority mangle; policy accept;
        \t\ttcp dport @shield_tcp_ports jump shield
        \t\tudp dport @shield_udp_ports jump shield
        \t\ttcp dport @tcp_ports jump guard
        \t\tudp dport @udp_ports jump guard
        \t}

        \tchain shield {
        \t\tiifname @trusted_ifaces return
        \t\tip saddr @ban4 counter name "banned" drop
        \t\tip saddr @ban4_net counter name "banned" drop
        \t\tip6 saddr @ban6 counter name "banned" drop
        \t\tip6 saddr @ban6_net counter name "banned" drop
        \t}

        \tchain guard {
        \t\tiifname @trusted_ifaces accept
        \t\tfib daddr type unicast accept
        \t\tct direction reply accept
        \t\tiifname @tailnet_ifaces ip saddr @tailnet4 counter name "allowed" accept
        \t\tiifname @tailnet_ifaces ip6 saddr @tailnet6 counter name "allowed" accept
        \t\ttcp dport 5432 counter name "dropped_tcp_5432" drop
        \t\ttcp dport 6379 counter name "dropped_tcp_6379" drop
        \t\tudp dport 9000 counter name "dropped_udp_9000" drop
        \t\tcounter name "dropped" drop
        \t}
        }

        """
    #expect(ruleset.nftText == expected)
    #expect(ruleset.tableName == "tailgate")
}

@Test func portCountersNameEachEntryWithItsProtocolAndPorts() {
    let ruleset = FirewallRuleset(FirewallConfiguration(tcpPorts: [.init(5432), .init(3000, 3010)], udpPorts: [.init(53)]))
    #expect(ruleset.portCounters == [
        PortCounter(name: "dropped_tcp_3000_3010", proto: "tcp", ports: "3000-3010"),
        PortCounter(name: "dropped_tcp_5432", proto: "tcp", ports: "5432"),
        PortCounter(name: "dropped_udp_53", proto: "udp", ports: "53"),
    ])
    #expect(ruleset.counterNames == ["allowed", "dropped", "banned", "dropped_tcp_3000_3010", "dropped_tcp_5432", "dropped_udp_53"])
}

@Test func aPortRangeMakesThePortSetAnIntervalSetAndRejectAnswersPerProtocol() {
    let text = FirewallRuleset(Configurations.wide).nftText
    #expect(text.contains(
        "\tset tcp_ports {\n\t\ttype inet_service\n\t\tflags interval\n\t\telements = { 22, 80, 443, 3000-3010, 5432,\n\t\t\t     5433, 6379, 8080, 65535 }\n"
    ))
    #expect(text.contains("\t\ttcp dport 3000-3010 counter name \"dropped_tcp_3000_3010\" reject with tcp reset\n"))
    #expect(text.contains("\t\tudp dport 9000-9100 counter name \"dropped_udp_9000_9100\" reject\n"))
    #expect(text.contains("\t\tcounter name \"dropped\" drop\n"))
}

@Test func elementsAreSortedAndWrappedAsNftListsThem() {
    let text = FirewallRuleset(Configurations.wide).nftText
    // ifname keys sort as little-endian numbers; one per line.
    #expect(text.contains("elements = { \"lo\",\n\t\t\t     \"eth1\",\n\t\t\t     \"docker0\",\n\t\t\t     \"br-1234\" }"))
    // Adjacent prefixes merge (10.0.0.0/25 + 10.0.0.128/25), a /32 has no suffix, two per line.
    #expect(text.contains("elements = { 0.0.0.0/1, 192.0.2.7 }"))
    #expect(text.contains("elements = { 2001:db8::1,\n\t\t\t     fd7a:115c:a1e0::/48 }"))
}

@Test func emptyListsKeepTheirSetsWithoutElements() {
    let text = FirewallRuleset(Configurations.sparse).nftText
    #expect(text.contains("\tset tailnet6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n"))
    #expect(text.contains("\tset udp_ports {\n\t\ttype inet_service\n\t}\n"))
    #expect(text.contains("\t\tudp dport @udp_ports jump guard\n"))
}

@Test func intervalElementsAreEncodedAsNftWritesThem() throws {
    let ruleset = FirewallRuleset(FirewallConfiguration(
        allow: Configurations.networks("100.64.0.0/10", "255.255.255.255", "0.0.0.0/0", "::/0"), tcpPorts: [.init(1, 65_535)]
    ))
    func encoded(_ name: String) throws -> [String] {
        try #require(ruleset.set(named: name)).elements.map { ByteKey.hex($0.key) + ($0.isIntervalEnd ? " end" : "") }
    }
    // 0.0.0.0/0 swallows everything else and reaches the top: one element, no END.
    #expect(try encoded("tailnet4") == ["00000000"])
    #expect(try encoded("tailnet6") == ["00000000000000000000000000000000"])
    #expect(try encoded("tcp_ports") == ["0000 end", "0001"])
    let prefixes = FirewallRuleset(FirewallConfiguration(allow: Configurations.networks("100.64.0.0/10", "100.100.0.0/16", "192.0.2.0/24")))
    let tailnet4 = try #require(prefixes.set(named: "tailnet4")).elements.map { ByteKey.hex($0.key) + ($0.isIntervalEnd ? " end" : "") }
    #expect(tailnet4 == ["00000000 end", "64400000", "64800000 end", "c0000200", "c0000300 end"])
}
