/// The `[bans]` table: the kernel ban sets, who may never be banned, and the local control socket that
/// `tailgate ban` and fail2ban's action talk to.
public struct BanConfiguration: Sendable, Equatable {
    /// False (the default): no shield, no control socket; the ban sets stay empty.
    public var enabled = false
    /// TCP ports whose sources the ban sets are checked against; nil: every listener's port and the
    /// `[firewall]` restricted TCP ports.
    public var tcpPorts: [FirewallConfiguration.PortRange]?
    /// UDP ports; nil: the `[firewall]` restricted UDP ports.
    public var udpPorts: [FirewallConfiguration.PortRange]?
    /// Never banned, besides what is never banned anyway (loopback, the tailnet, PROXY peers, allow lists).
    public var never = AddressSet()
    /// How long a ban lasts when the request names no duration.
    public var defaultDuration: Duration = .seconds(3_600)
    /// The longest ban accepted (a longer request is shortened to it).
    public var maxDuration: Duration = .seconds(30 * 86_400)
    /// Bans each kernel set holds at most; past it new bans are refused.
    public var capacity = 65_536
    /// The Unix socket `tailgate ban` talks to (owner and group of the agent, mode 0660).
    public var controlSocket = BanConfiguration.defaultControlSocket
    /// `[bans.crowdsec]`: pull CrowdSec's decisions into the ban sets (nil: not a bouncer).
    public var crowdsec: CrowdSecConfiguration?

    public static let defaultControlSocket = "/run/tailgate/control.sock"

    public init() {}

    /// The shortest prefixes a ban may name: a /8 by mistake would take a continent off the host.
    public static let shortestIPv4Prefix = 16
    public static let shortestIPv6Prefix = 32
}

extension TailgateConfiguration {
    /// Who is never banned, whatever asks: loopback, the tailnet (`[firewall] allow`, or Tailscale's ranges),
    /// every `proxy_protocol_from` peer (banning the cloud VM would cut every client behind it), every address
    /// an `allow` list admits (a listener's or a route's: the operator's own), and `[bans] never`. A typo in
    /// a ban request can then never lock the operator out of their own edge.
    public var neverBanned: AddressSet {
        var sets = [
            AddressSet([
                IPNetwork(address: IPAddress(v4: 0x7F00_0000), prefixLength: 8), IPNetwork(address: IPAddress(v6: 0, 1), prefixLength: 128),
            ]),
            AddressSet(firewall?.allow ?? FirewallConfiguration.tailnetPrefixes),
            bans.never,
        ]
        for listener in listeners {
            sets.append(AddressSet(listener.proxyProtocolFrom))
            for rule in [listener.access] + Array(listener.routeAccess.values) {
                sets += (rule.allow ?? []).map(\.addresses)
            }
        }
        return AddressSet.union(sets)
    }

    /// The ports the ban sets guard: `[bans] tcp_ports`/`udp_ports` when given, else every listener's port and
    /// the `[firewall]` restricted ports.
    public var shieldedPorts: (tcp: [FirewallConfiguration.PortRange], udp: [FirewallConfiguration.PortRange]) {
        let listenerPorts = listeners.flatMap { $0.binds.compactMap { $0.value.port } }.map { FirewallConfiguration.PortRange(UInt16($0)) }
        let restricted = firewall?.enabled == true ? (tcp: firewall?.tcpPorts ?? [], udp: firewall?.udpPorts ?? []) : (tcp: [], udp: [])
        let tcp = bans.tcpPorts ?? (listenerPorts + restricted.tcp)
        let udp = bans.udpPorts ?? restricted.udp
        return (Self.merged(tcp), Self.merged(udp))
    }

    /// Sorted, without duplicates, overlapping or adjacent ranges joined (nft refuses overlapping intervals).
    static func merged(_ ranges: [FirewallConfiguration.PortRange]) -> [FirewallConfiguration.PortRange] {
        var result: [FirewallConfiguration.PortRange] = []
        for range in ranges.sorted() {
            if let last = result.last, Int(range.lower) <= Int(last.upper) + 1 {
                result[result.count - 1].upper = max(last.upper, range.upper)
            } else {
                result.append(range)
            }
        }
        return result
    }
}

/// `[bans.crowdsec]`: tailgate as a CrowdSec bouncer, pulling a Local API's decisions stream.
public struct CrowdSecConfiguration: Sendable, Equatable {
    /// The Local API, `http://127.0.0.1:8080` (plain HTTP on loopback or the tailnet; https is not spoken).
    public var url: String
    /// A file holding the bouncer's API key (`cscli bouncers add tailgate`), read at each (re)load.
    public var apiKeyFile: String
    /// How often the stream is pulled.
    public var pullInterval: Duration = .seconds(10)

    public init(url: String, apiKeyFile: String, pullInterval: Duration = .seconds(10)) {
        self.url = url
        self.apiKeyFile = apiKeyFile
        self.pullInterval = pullInterval
    }
}
