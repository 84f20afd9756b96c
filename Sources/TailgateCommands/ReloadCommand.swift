import Glibc
import TailgateAgent
import TailgateSystem

/// `tailgate reload --pid PID`: checks the file as `tailgate check` does and, only when it is valid, sends
/// SIGHUP to the agent. The unit's `ExecReload` runs it, so that `systemctl reload` needs nothing beyond
/// tailgate itself (`/bin/kill` comes from procps, which a minimal system may not have).
public enum ReloadCommand {
    public struct Outcome: Sendable {
        /// What to print: the file's errors, or what was signalled.
        public let text: String
        public let exitCode: Int32
    }

    public static func run(configPath: String, pid: Int32) -> Outcome {
        guard pid > 1 else { return Outcome(text: "tailgate reload: --pid \(pid) is not an agent's process id\n", exitCode: 2) }
        let (errors, warnings) = TailgateMain.check(configPath: configPath)
        if let errors {
            return Outcome(text: errors + "\nreload not sent: the running agent keeps its configuration\n", exitCode: 1)
        }
        guard kill(pid, SIGHUP) == 0 else {
            return Outcome(text: "tailgate reload: cannot signal process \(pid): \(SystemCallError("kill"))\n", exitCode: 1)
        }
        let notes = warnings.map { $0 + "\n" }.joined()
        return Outcome(text: notes + "\(configPath): configuration is valid; reload sent to process \(pid)\n", exitCode: 0)
    }
}
