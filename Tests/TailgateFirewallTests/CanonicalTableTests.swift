import Testing
@testable import TailgateConfig
@testable import TailgateFirewall

@Test func theDesiredTableAgreesWithItself() throws {
    let desired = try CanonicalTable(desired: FirewallRuleset(Configurations.wide))
    #expect(desired.differences(from: desired).isEmpty)
    #expect(desired.rules["guard"]?.count == 17)
    #expect(desired.rules["prerouting"]?.first == "[meta load l4proto => reg 1 ] [cmp eq reg 1 0x00000006 ] "
        + "[payload load 2b @ transport header + 2 => reg 1 ] [lookup reg 1 set shield_tcp_ports 0x0 ] [immediate reg 0 jump -> shield ]")
    #expect(desired.rules["shield"]?.count == 5)
}

@Test func differencesAreReportedOnePerLine() throws {
    let desired = try CanonicalTable(desired: FirewallRuleset(Configurations.example))
    var live = desired
    live.objects["dropped_tcp_6379"] = nil
    live.objects["extra"] = 1
    live.sets["udp_ports"]?.elements.append("0035 flags 0")
    live.sets["tcp_ports"]?.header = "key length 2, flags 0x4"
    live.chains["prerouting"] = "type filter hook prerouting priority 0 policy accept"
    live.chains["mine"] = "regular"
    live.rules["guard"]?.swapAt(0, 1)
    #expect(live.differences(from: desired) == [
        "counter dropped_tcp_6379 is missing",
        "unexpected object extra",
        "set tcp_ports: key or flags differ (key length 2, flags 0x4, expected key length 2, flags 0x0)",
        "set udp_ports: elements differ (1 unexpected, 0 missing)",
        "chain guard: rule 1 differs (expected: iifname @trusted_ifaces accept)",
        "unexpected chain mine",
        "chain prerouting: type filter hook prerouting priority 0 policy accept, expected type filter hook prerouting priority -150 policy accept",
    ])
}

@Test func aMissingOrUnparseablePartIsReported() throws {
    let desired = try CanonicalTable(desired: FirewallRuleset(Configurations.example))
    var live = desired
    live.sets["tailnet6"] = nil
    live.rules["guard"]?.removeLast()
    live.unparsed = 1
    #expect(live.differences(from: desired) == [
        "1 object(s) of the table could not be parsed",
        "set tailnet6 is missing",
        "chain guard: 8 rules, expected 9",
        "chain guard: rule 9 differs (expected: counter name \"dropped\" drop)",
    ])
}
