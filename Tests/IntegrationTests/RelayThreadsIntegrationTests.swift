import Foundation
import TailgateTestSupport
import Testing

/// The relay threads as an operator sees them: how many accept (`accept_spread`), in /metrics.
@Suite struct RelayThreadsIntegrationTests {
    /// `accept_spread` decides how many relay threads take new connections, at start and on reload; whichever
    /// threads accept, every connection is accepted (a thread that joins registers the listeners again).
    @Test func acceptSpreadSetsHowManyRelayThreadsAccept() throws {
        let sandbox = try Sandbox("accept-spread")
        defer { sandbox.tearDown() }
        let port = TestPort.free(), healthPort = TestPort.free()
        func config(_ spread: String) -> String {
            TailgateInstance.healthConfig(port: port, healthPort: healthPort, global: "[global]\naccept_spread = \"\(spread)\"")
        }
        let tailgate = try TailgateInstance.start(config: config("all"), in: sandbox)
        #expect(TestPort.waitUntilAccepting(healthPort))
        let relayThreads = threadFiles(tailgate.process.pid, "comm").filter { $0.hasPrefix("splice-") }.count
        #expect(relayThreads >= 1)
        func sample(_ name: String) -> Double? { HealthIntegrationTests.parsedMetrics(healthPort).samples[name] }
        var connections = 0
        /// Opens and closes `count` connections, then expects all of them counted as accepted.
        func connectAndCount(_ count: Int) {
            for _ in 0..<count { (try? RawClient(host: "127.0.0.1", port: port))?.close() }
            connections += count
            #expect(Poll.until(timeout: 10) {
                sample("tailgate_connections_accepted_total{listener=\"public\"}") == Double(connections)
            })
        }
        #expect(sample("tailgate_relay_threads_accepting{}") == Double(relayThreads))
        connectAndCount(40)
        #expect(try tailgate.reload(config("load")))
        #expect(sample("tailgate_relay_threads_accepting{}") == 1, "an idle agent accepts on one thread")
        connectAndCount(40)
        #expect(try tailgate.reload(config("all")))
        #expect(sample("tailgate_relay_threads_accepting{}") == Double(relayThreads))
        connectAndCount(40)
    }
}
