import Foundation
import Testing
@testable import TailgateConfig

// [global] and [log]: the relay, the limits, the log's format, level and buffer.

@Test func logAndGlobalTablesAreRead() throws {
    let text = """
        [global]
        drain_timeout = "1m30s"
        [log]
        format = "json"
        level = "debug"
        [listeners.a]
        bind = ["127.0.0.1:1"]
        default = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """
    let config = try ConfigurationLoader.load(text: text, file: "t.toml")
    #expect(config.drainTimeout == .seconds(90))
    #expect(config.log.format == .json)
    #expect(config.log.level == .debug)
    #expect(config.relay == .splice)
    #expect(config.maxConnections == nil)
    #expect(config.log.bufferBytes == 4 << 20)
}

@Test func theLogBufferIsASizeWithAUnitWithinItsRange() throws {
    let base = oneListener
    #expect(try ConfigurationLoader.load(text: "[log]\nbuffer = \"64KiB\"\n" + base, file: "t.toml").log.bufferBytes == 65_536)
    #expect(try ConfigurationLoader.load(text: "[log]\nbuffer = \"16MiB\"\n" + base, file: "t.toml").log.bufferBytes == 16 << 20)
    #expect(try ConfigurationLoader.load(text: "[log]\nbuffer = 1048576\n" + base, file: "t.toml").log.bufferBytes == 1 << 20)
    let small = errors("[log]\nbuffer = \"1KiB\"\n" + base)
    #expect(small.contains { $0.contains("t.toml:2:10") && $0.contains("out of range 64KiB…1024MiB") }, "\(small)")
    let unit = errors("[log]\nbuffer = \"4MB\"\n" + base)
    #expect(unit.contains { $0.contains("t.toml:2:10") && $0.contains("expected a size like") && $0.contains("\"4MB\"") }, "\(unit)")
}

/// The smallest valid file: one listener and its upstream.
private let oneListener = """
    [listeners.a]
    bind = ["127.0.0.1:1"]
    default = "u"
    [upstreams.u]
    servers = ["127.0.0.1:2"]
    """

@Test func relayModeAndTheGlobalLimitAreReadAndChecked() throws {
    let base = oneListener
    let config = try ConfigurationLoader.load(text: "[global]\nrelay = \"splice\"\nmax_connections = 500\n" + base, file: "t.toml")
    #expect(config.relay == .splice)
    #expect(config.warnings.isEmpty)
    #expect(config.maxConnections == 500)
    // The NIO copy relay is gone: a file that still names it loads, with a warning at its line.
    let copy = try ConfigurationLoader.load(text: "[global]\nrelay = \"copy\"\n" + base, file: "t.toml")
    #expect(copy.relay == .splice)
    #expect(copy.warnings.map(\.description) == [
        "t.toml:2:9: global.relay: warning: relay = \"copy\" was removed; connections are relayed with splice(2) (\"splice\"); remove the key",
    ])
    #expect(config.acceptSpread == .load)
    let spread = try ConfigurationLoader.load(text: "[global]\naccept_spread = \"all\"\n" + base, file: "t.toml")
    #expect(spread.acceptSpread == .all)
    let wrongSpread = errors("[global]\naccept_spread = \"round_robin\"\n" + base)
    #expect(wrongSpread.contains { $0.contains("t.toml:2:17") && $0.contains("\"load\", \"all\"") })
    let wrongMode = errors("[global]\nrelay = \"zerocopy\"\n" + base)
    #expect(wrongMode.contains { $0.contains("t.toml:2:9") && $0.contains("expected one of \"splice\"") })
    let zero = errors("[global]\nmax_connections = 0\n" + base)
    #expect(zero.contains { $0.contains("t.toml:2:") && $0.contains("max_connections") })
}
