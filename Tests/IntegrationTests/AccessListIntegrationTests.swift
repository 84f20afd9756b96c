import Foundation
import TailgateTestSupport
import Testing

/// Who may reach which route, judged on the client's own address: from distinct loopback sources, and
/// through a trusted PROXY hop whose own address is not the one judged; a reload switches a list file.
@Suite(.serialized)
struct AccessListIntegrationTests {
    /// True when a connection from `source` got past admission (the server's ack after the ClientHello).
    static func admitted(port: Int, source: String, hello: [UInt8], header: String? = nil) -> Bool {
        guard let client = try? RawClient(host: "127.0.0.1", port: port, source: source) else { return false }
        defer { client.close() }
        if let header { _ = client.send(header) }
        guard client.send(hello) else { return false }
        return client.receive(atLeast: 4, timeout: 5) == Array("ack\n".utf8)
    }

    @Test func routesAnswerOnlyTheClientsTheirListsAdmit() throws {
        let sandbox = try Sandbox("access")
        defer { sandbox.tearDown() }
        let ops = try Captures.load("openssl-sni-alpn.bin")  // SNI tailgate.example.test
        let app = try Captures.load("curl.bin")  // SNI www.example.test
        let opsServer = try ConversationServer(threads: 4) { $0.pingPong(helloLength: ops.count) }
        defer { opsServer.stop() }
        let appServer = try ConversationServer(threads: 4) { $0.pingPong(helloLength: app.count) }
        defer { appServer.stop() }
        try sandbox.write("admins.txt", "# who may reach ops\n127.0.0.81\n198.51.100.0/24\n")
        let port = TestPort.free(), hopPort = TestPort.free()
        func config() -> String {
            """
            [lists]
            admins = { file = "admins.txt" }
            blocked = ["127.0.0.83", "203.0.113.0/24"]

            [listeners.public]
            bind = ["127.0.0.1:\(port)"]
            deny = ["@blocked"]
            [listeners.public.routes]
            "tailgate.example.test" = { upstream = "ops", allow = ["@admins"] }
            "www.example.test" = "app"

            [listeners.home]
            bind = ["127.0.0.1:\(hopPort)"]
            proxy_protocol_from = ["127.0.0.90"]
            deny = ["@blocked"]
            [listeners.home.routes]
            "tailgate.example.test" = { upstream = "ops", allow = ["@admins"] }
            "www.example.test" = "app"

            [upstreams.ops]
            servers = ["127.0.0.1:\(opsServer.port)"]
            [upstreams.app]
            servers = ["127.0.0.1:\(appServer.port)"]
            """
        }
        let tailgate = try TailgateInstance.start(config: config(), in: sandbox)

        // Directly: the admin reaches ops and app; another client only app; a blocked one neither.
        #expect(Self.admitted(port: port, source: "127.0.0.81", hello: ops))
        #expect(Self.admitted(port: port, source: "127.0.0.81", hello: app))
        #expect(!Self.admitted(port: port, source: "127.0.0.82", hello: ops))
        #expect(Self.admitted(port: port, source: "127.0.0.82", hello: app))
        #expect(!Self.admitted(port: port, source: "127.0.0.83", hello: app))
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.82:", "sni=tailgate.example.test", "outcome=denied", "reason=\"not in allow (route tailgate.example.test)\""]) != nil,
                "\(tailgate.process.output.suffix(3_000))")
        #expect(tailgate.waitForConnectionLine(containing: ["client=127.0.0.83:", "outcome=denied", "reason=\"deny @blocked (listener)\""]) != nil)

        // Through the trusted hop (127.0.0.90, itself in no list): the header's client is judged.
        let fromAdmin = "PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n", fromBlocked = "PROXY TCP4 203.0.113.9 127.0.0.1 40001 443\r\n"
        let fromOther = "PROXY TCP4 192.0.2.5 127.0.0.1 40002 443\r\n"
        #expect(Self.admitted(port: hopPort, source: "127.0.0.90", hello: ops, header: fromAdmin))
        #expect(!Self.admitted(port: hopPort, source: "127.0.0.90", hello: ops, header: fromOther))
        #expect(Self.admitted(port: hopPort, source: "127.0.0.90", hello: app, header: fromOther))
        #expect(!Self.admitted(port: hopPort, source: "127.0.0.90", hello: app, header: fromBlocked))
        #expect(tailgate.waitForConnectionLine(containing: ["listener=home", "client=192.0.2.5:40002", "outcome=denied"]) != nil)

        // The list file changes and a reload applies it: 127.0.0.81 is out, 127.0.0.82 in.
        try sandbox.write("admins.txt", "127.0.0.82\n")
        #expect(try tailgate.reload(config()))
        #expect(!Self.admitted(port: port, source: "127.0.0.81", hello: ops))
        #expect(Self.admitted(port: port, source: "127.0.0.82", hello: ops))
        // A broken list file fails the reload and the lists in force stay.
        try sandbox.write("admins.txt", "127.0.0.82\nnot-an-address\n")
        #expect(try !tailgate.reload(config()))
        #expect(tailgate.process.output.contains("admins.txt:2:1: \"not-an-address\" is not a valid address or prefix"))
        #expect(Self.admitted(port: port, source: "127.0.0.82", hello: ops))

        let denied = tailgate.connectionLines.filter { $0.contains("outcome=denied") }.count
        #expect(denied >= 5, "\(denied)")
    }
}
