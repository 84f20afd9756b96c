import Foundation
import TailgateTestSupport

/// Network namespaces made by a test: a host running tailgate, a tailnet peer arriving on an
/// interface named tailscale0, an outsider, a spoofer with a tailnet address on another interface,
/// and a container behind a Docker-style DNAT of port 15432. All addresses live only inside these
/// namespaces; nothing outside them is touched.
final class NetworkLab {
    let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    var host: String { "tgh-\(suffix)" }
    var peer: String { "tgt-\(suffix)" }
    var outsider: String { "tgo-\(suffix)" }
    var spoofer: String { "tgs-\(suffix)" }
    var container: String { "tgc-\(suffix)" }
    private(set) var created: [String] = []
    private var servers: [ChildProcess] = []
    let ip: String

    static let hostTailnet4 = "100.64.0.1", peer4 = "100.64.0.2"
    static let hostTailnet6 = "fd7a:115c:a1e0::1", peer6 = "fd7a:115c:a1e0::2"
    static let hostOutside4 = "198.18.0.1", outsider4 = "198.18.0.2"
    static let hostOutside6 = "fd00:18::1", outsider6 = "fd00:18::2"
    static let hostSpoof4 = "100.64.99.1", spoofer4 = "100.64.99.2"
    static let hostSpoof6 = "fd7a:115c:a1e0:ffff::1", spoofer6 = "fd7a:115c:a1e0:ffff::2"
    static let container4 = "198.19.0.2", container6 = "fd00:19::2"

    /// Whether namespace tests can run here (root and iproute2); in CI they must.
    static var available: Bool { getuid() == 0 && Command.executable(named: "ip") != nil && Command.executable(named: "nft") != nil }
    static var requiredButMissing: Bool { !available && ProcessInfo.processInfo.environment["CI"] != nil }

    init() throws {
        guard let ip = Command.executable(named: "ip") else { throw SandboxError.missingTool("ip") }
        self.ip = ip
        do {
            try build()
        } catch {
            tearDown()
            throw error
        }
    }

    private func build() throws {
        for name in [host, peer, outsider, spoofer, container] {
            try run(ip, ["netns", "add", name])
            created.append(name)
            try exec(name, ip, ["link", "set", "lo", "up"])
            // No duplicate address detection: link-local addresses would stay tentative for a second or
            // two, and IPv6 neighbour discovery (hence the first connections) would stall meanwhile.
            try exec(name, "/usr/sbin/sysctl", ["-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])
        }
        try link(host, "tailscale0", [Self.hostTailnet4 + "/24", Self.hostTailnet6 + "/64"],
                 peer, "ts-peer", [Self.peer4 + "/24", Self.peer6 + "/64"], gateway: (Self.hostTailnet4, Self.hostTailnet6))
        try link(host, "eth0", [Self.hostOutside4 + "/24", Self.hostOutside6 + "/64"],
                 outsider, "eth0", [Self.outsider4 + "/24", Self.outsider6 + "/64"], gateway: (Self.hostOutside4, Self.hostOutside6))
        try link(host, "eth1", [Self.hostSpoof4 + "/24", Self.hostSpoof6 + "/64"],
                 spoofer, "eth0", [Self.spoofer4 + "/24", Self.spoofer6 + "/64"], gateway: (Self.hostSpoof4, Self.hostSpoof6))
        try link(host, "docker0", ["198.19.0.1/24", "fd00:19::1/64"],
                 container, "eth0", [Self.container4 + "/24", Self.container6 + "/64"], gateway: ("198.19.0.1", "fd00:19::1"))
        try exec(host, "/usr/sbin/sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        // Docker-style publishing: DNAT host port 15432 to the container's 5432 in nat prerouting (priority dstnat).
        try nft(host, """
            table ip dockerlike {
                chain prerouting {
                    type nat hook prerouting priority dstnat;
                    tcp dport 15432 dnat to \(Self.container4):5432
                }
            }
            table ip6 dockerlike6 {
                chain prerouting {
                    type nat hook prerouting priority dstnat;
                    tcp dport 15432 dnat to [\(Self.container6)]:5432
                }
            }
            """)
        servers.append(try server(in: host, ports: [5432, 6000, 7000, 8080]))
        servers.append(try server(in: container, ports: [5432]))
    }

    private func link(_ a: String, _ aName: String, _ aAddresses: [String], _ b: String, _ bName: String, _ bAddresses: [String],
                      gateway: (String, String)) throws {
        let temporary = "v\(suffix.prefix(6))\(created.count)\(Int.random(in: 0...99))"
        try run(ip, ["link", "add", temporary + "a", "netns", a, "type", "veth", "peer", "name", temporary + "b", "netns", b])
        try exec(a, ip, ["link", "set", temporary + "a", "name", aName])
        try exec(b, ip, ["link", "set", temporary + "b", "name", bName])
        for address in aAddresses { try exec(a, ip, ["addr", "add", address, "dev", aName, "nodad"]) }
        for address in bAddresses { try exec(b, ip, ["addr", "add", address, "dev", bName, "nodad"]) }
        try exec(a, ip, ["link", "set", aName, "up"])
        try exec(b, ip, ["link", "set", bName, "up"])
        try exec(b, ip, ["route", "add", "default", "via", gateway.0])
        try exec(b, ip, ["-6", "route", "add", "default", "via", gateway.1])
    }

    private func server(in namespace: String, ports: [Int]) throws -> ChildProcess {
        let arguments = ports.flatMap { ["0.0.0.0", "\($0)", "::", "\($0)"] }
        let log = FileManager.default.temporaryDirectory.path + "/lab-server-\(namespace).log"
        let child = try ChildProcess(ip, ["netns", "exec", namespace, "/usr/bin/python3",
                                          "\(Sandbox.repositoryRoot)/Tests/Fixtures/lab_server.py"] + arguments, outputPath: log)
        guard child.waitForOutput("listening", timeout: 10) else {
            throw SandboxError.timeout("lab server in \(namespace)")
        }
        return child
    }

    /// Whether `namespace` can connect to address:port and get the greeting within `timeout` seconds.
    func reaches(from namespace: String, _ address: String, _ port: Int, timeout: Double = 2) -> Bool {
        Command.run(ip, ["netns", "exec", namespace, "/usr/bin/python3", "\(Sandbox.repositoryRoot)/Tests/Fixtures/lab_client.py",
                         address, "\(port)", "\(timeout)"], timeout: timeout + 10).status == 0
    }

    /// Runs a command inside a namespace; throws on failure.
    @discardableResult
    func exec(_ namespace: String, _ executable: String, _ arguments: [String]) throws -> String {
        try run(ip, ["netns", "exec", namespace, executable] + arguments)
    }

    func nft(_ namespace: String, _ script: String) throws {
        let result = Command.run(ip, ["netns", "exec", namespace, Command.executable(named: "nft") ?? "/usr/sbin/nft", "-f", "-"], input: script)
        guard result.status == 0 else { throw SandboxError.command("nft -f in \(namespace): \(result.output)") }
    }

    /// `nft list table inet tailgate` in the host namespace (empty when missing).
    func listTailgateTable() -> String {
        let result = Command.run(ip, ["netns", "exec", host, Command.executable(named: "nft") ?? "/usr/sbin/nft", "list", "table", "inet", "tailgate"])
        return result.status == 0 ? result.output : ""
    }

    @discardableResult
    private func run(_ executable: String, _ arguments: [String]) throws -> String {
        let result = Command.run(executable, arguments, timeout: 30)
        guard result.status == 0 else { throw SandboxError.command("\(executable) \(arguments.joined(separator: " ")): \(result.output)") }
        return result.output
    }

    func tearDown() {
        for server in servers {
            kill(server.pid, SIGKILL)
            _ = server.waitForExit(timeout: 5)
        }
        for name in created.reversed() {
            _ = Command.run(ip, ["netns", "del", name])
        }
    }
}
