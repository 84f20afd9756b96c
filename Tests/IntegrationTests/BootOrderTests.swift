import Foundation
import TailgateTestSupport
import Testing

/// At boot tailgate starts before tailscaled, so the tailnet address it binds does not exist yet.
@Suite(.serialized, .enabled(if: NetworkLab.available || NetworkLab.requiredButMissing, "needs root and iproute2 (CI runs it as root)"))
struct BootOrderTests {
    @Test func listenersAndTheHealthEndpointBindATailnetAddressThatAppearsLater() throws {
        #expect(!NetworkLab.requiredButMissing)
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sandbox = try Sandbox("boot-order")
        defer { sandbox.tearDown() }
        let later = "100.64.0.5", port = TestPort.free(), healthPort = TestPort.free()
        let tailgate = try FirewallIntegrationTests.startTailgate(lab, sandbox, config: """
            [health]
            listen = "\(later):\(healthPort)"
            [listeners.tailnet]
            bind = ["\(later):\(port)"]
            default = "u"
            [upstreams.u]
            servers = ["127.0.0.1:8080"]
            """)
        #expect(!tailgate.process.output.contains("cannot bind"), "\(tailgate.process.output)")

        // The address appears, as when tailscaled comes up; both sockets accept without a restart.
        try lab.exec(lab.host, lab.ip, ["addr", "add", "\(later)/32", "dev", "lo"])
        let healthz = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "--max-time", "5", "-w", " %{http_code}",
                                           "http://\(later):\(healthPort)/healthz"]).output
        #expect(healthz == "ok\n 200", "\(healthz)")
        let readyz = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-s", "--max-time", "5", "-w", " %{http_code}",
                                          "http://\(later):\(healthPort)/readyz"]).output
        #expect(readyz.hasSuffix(" 200"), "\(readyz)")
        _ = Command.run(lab.ip, ["netns", "exec", lab.host, "/usr/bin/curl", "-sk", "--max-time", "3",
                                 "--resolve", "boot.test:\(port):\(later)", "https://boot.test:\(port)/"])
        #expect(tailgate.waitForConnectionLine(containing: ["sni=boot.test", "upstream=u", "server=127.0.0.1:8080"]) != nil,
                "\(tailgate.process.output)")
    }
}
