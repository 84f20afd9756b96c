import TailgateAgent
import TailgateConfig
import TailgateFirewall

/// `tailgate firewall plan|apply|status|flush`: what the CLI prints, and its exit code.
public enum FirewallCommands {
    public struct Output: Sendable, Error {
        public var text: String
        public var exitCode: Int32
        /// A report (`status`) goes to standard output whatever its exit code, so it can be piped; other
        /// failures go to standard error.
        public var isReport = false
    }

    /// The ruleset in nft syntax, without touching the kernel (no privileges needed).
    public static func plan(configPath: String) -> Output {
        switch ruleset(configPath, purpose: "nothing to plan") {
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

    /// What the kernel holds, whether it matches the configuration, and the counters. Exit 0 when the
    /// kernel is as the configuration wants: the table in sync, or no table with `enabled = false`.
    public static func status(configPath: String) -> Output {
        switch ruleset(configPath, purpose: "tailgate leaves nftables alone") {
        case .failure(let output):
            return output
        case .success(let (ruleset, enabled)):
            do {
                let kernel = NetlinkFirewall()
                var text = "table inet \(ruleset.tableName): "
                let drift = try kernel.verify(ruleset)
                let wanted: Bool
                switch (drift, enabled) {
                case (.inSync, true):
                    text += "present, in sync with \(configPath)\n"
                    wanted = true
                case (.missing, true):
                    text += "missing (run `tailgate firewall apply` or start the agent)\n"
                    wanted = false
                case (.differs(let differences), true):
                    text += "present, but differs from \(configPath):\n" + differences.map { "  - \($0)\n" }.joined()
                    wanted = false
                case (.missing, false):
                    text += "missing, as [firewall] enabled = false wants\n"
                    wanted = true
                case (_, false):
                    text += "present, left from before: [firewall] enabled = false, so tailgate neither maintains nor removes it "
                        + "(`tailgate firewall flush` removes it)\n"
                    wanted = false
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
                return Output(text: text, exitCode: wanted ? 0 : 1, isReport: true)
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

    /// The configured ruleset; `purpose` ends the message when the file has no [firewall] table.
    private static func ruleset(_ configPath: String, purpose: String = "nothing to apply") -> Result<(FirewallRuleset, enabled: Bool), Output> {
        do {
            let (configuration, _) = try ConfigurationFile.load(path: configPath)
            guard let firewall = configuration.firewall else {
                return .failure(Output(text: "\(configPath) has no [firewall] table; \(purpose)\n", exitCode: 1))
            }
            return .success((FirewallRuleset(firewall), firewall.enabled))
        } catch {
            return .failure(Output(text: error.description + "\n", exitCode: 1))
        }
    }
}
