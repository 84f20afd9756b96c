import TailgateConfig
import TailgateFirewall

/// `tailgate firewall plan|apply|status|flush`: what the CLI prints, and its exit code.
public enum FirewallCommands {
    public struct Output: Sendable, Error {
        public var text: String
        public var exitCode: Int32
    }

    /// The ruleset in nft syntax, without touching the kernel (no privileges needed).
    public static func plan(configPath: String) -> Output {
        switch ruleset(configPath) {
        case .failure(let output): return output
        case .success(let (ruleset, _)): return Output(text: ruleset.nftText, exitCode: 0)
        }
    }

    /// Applies the table in one transaction and verifies it; refuses while the configuration says
    /// `enabled = false` ("never touch nftables"), which the agent would not undo either.
    public static func apply(configPath: String) -> Output {
        switch ruleset(configPath) {
        case .failure(let output):
            return output
        case .success(let (ruleset, enabled)):
            guard enabled else {
                return Output(text: "\(configPath) says [firewall] enabled = false: not applying (set enabled = true to have tailgate manage the table)\n", exitCode: 1)
            }
            do {
                let kernel = NetlinkFirewall()
                try kernel.apply(ruleset)
                let drift = try kernel.verify(ruleset)
                return drift == .inSync
                    ? Output(text: "applied table inet \(ruleset.tableName); the kernel holds exactly the planned ruleset\n", exitCode: 0)
                    : Output(text: "applied, but the kernel's table differs: \(drift)\n", exitCode: 1)
            } catch {
                return Output(text: "\(error)\n", exitCode: 1)
            }
        }
    }

    /// What the kernel holds, whether it matches the configuration, and the counters.
    public static func status(configPath: String) -> Output {
        switch ruleset(configPath) {
        case .failure(let output):
            return output
        case .success(let (ruleset, enabled)):
            do {
                let kernel = NetlinkFirewall()
                var text = "table inet \(ruleset.tableName): "
                let drift = try kernel.verify(ruleset)
                switch drift {
                case .inSync: text += "present, in sync with \(configPath)\n"
                case .missing:
                    text += enabled
                        ? "missing (run `tailgate firewall apply` or start the agent)\n"
                        : "missing, as [firewall] enabled = false wants\n"
                case .differs(let differences):
                    text += "present, but differs from \(configPath):\n" + differences.map { "  - \($0)\n" }.joined()
                }
                if let counters = try kernel.counters(ruleset) {
                    text += "counters (since the table was last replaced):\n"
                    text += "  allowed  \(counters.allowed.packets) packets  \(counters.allowed.bytes) bytes\n"
                    text += "  dropped  \(counters.dropped.packets) packets  \(counters.dropped.bytes) bytes\n"
                    for counter in ruleset.portCounters {
                        let value = counters.perPort[counter.name] ?? CounterValue(packets: 0, bytes: 0)
                        text += "  \(counter.proto) \(counter.ports)  \(value.packets) packets dropped\n"
                    }
                }
                return Output(text: text, exitCode: drift == .inSync ? 0 : 1)
            } catch {
                return Output(text: "\(error)\n", exitCode: 1)
            }
        }
    }

    /// Removes tailgate's table (idempotent: no table is not an error, and is said as such).
    public static func flush() -> Output {
        do {
            let kernel = NetlinkFirewall()
            guard try kernel.tableExists(tableName: "tailgate") else {
                return Output(text: "no table inet tailgate; nothing to remove\n", exitCode: 0)
            }
            try kernel.remove(tableName: "tailgate")
            return Output(text: "removed table inet tailgate\n", exitCode: 0)
        } catch {
            return Output(text: "\(error)\n", exitCode: 1)
        }
    }

    private static func ruleset(_ configPath: String) -> Result<(FirewallRuleset, enabled: Bool), Output> {
        do {
            let (configuration, _) = try ConfigurationFile.load(path: configPath)
            guard let firewall = configuration.firewall else {
                return .failure(Output(text: "\(configPath) has no [firewall] table; nothing to plan\n", exitCode: 1))
            }
            return .success((FirewallRuleset(firewall), firewall.enabled))
        } catch {
            return .failure(Output(text: error.description + "\n", exitCode: 1))
        }
    }
}
