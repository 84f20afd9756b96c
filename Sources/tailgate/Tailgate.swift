import ArgumentParser
import TailgateAgent
import TailgateCommands

/// Synchronous at the top: an async `main` runs as a user-initiated task, whose worker threads libdispatch
/// tries to renice below 0, which the unit's unprivileged user may not (a journal line per start). The agent
/// runs at default priority from `TailgateMain.runAtDefaultPriority` instead.
@main
struct Tailgate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tailgate",
        abstract: "TLS-passthrough SNI proxy with PROXY protocol, for hosts on a tailnet.",
        version: TailgateVersion.current,
        subcommands: [Run.self, Check.self, Reload.self, Status.self, Firewall.self, Ban.self]
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: [.short, .long], help: "Path of the configuration file.")
    var config = "/etc/tailgate/tailgate.toml"
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the agent until SIGTERM or SIGINT.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let configPath = options.config
        guard TailgateMain.runAtDefaultPriority({ try await TailgateMain.run(configPath: configPath) }) else {
            throw ExitCode.failure
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate the configuration file and exit (like nginx -t).")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let (errors, warnings) = TailgateMain.check(configPath: options.config)
        var standardError = StandardError()
        if let errors {
            print(errors, to: &standardError)
            throw ExitCode(1)
        }
        for warning in warnings { print(warning, to: &standardError) }
        print("\(options.config): configuration is valid" + (warnings.isEmpty ? "" : " (\(warnings.count) warnings)"))
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the configuration file and, only if it is valid, make the agent with this process id reload it."
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "The running agent's process id (systemd's $MAINPID).")
    var pid: Int32

    func run() throws {
        let outcome = ReloadCommand.run(configPath: options.config, pid: pid)
        TailgateMain.writeToStandardError(outcome.text)
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        TailgateMain.writeToStandardError(string)
    }
}

struct Firewall: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and manage tailgate's nftables table (inet tailgate).",
        subcommands: [Plan.self, Apply.self, Status.self, Flush.self]
    )

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the ruleset in nft syntax without touching the kernel.")
        @OptionGroup var options: ConfigOption
        func run() throws { try emit(FirewallCommands.plan(configPath: options.config)) }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace the table in one transaction and verify it (needs CAP_NET_ADMIN).")
        @OptionGroup var options: ConfigOption
        func run() throws { try emit(FirewallCommands.apply(configPath: options.config)) }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether the kernel holds the configured table, and its counters.")
        @OptionGroup var options: ConfigOption
        func run() throws { try emit(FirewallCommands.status(configPath: options.config)) }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove tailgate's table: the ports it restricted are open again.")
        @OptionGroup var options: ConfigOption
        func run() throws { try emit(FirewallCommands.flush()) }
    }
}

/// Prints a command's output (stdout on success or for a report, stderr on failure) and exits with its code.
private func emit(_ output: FirewallCommands.Output) throws {
    if output.exitCode == 0 || output.isReport {
        print(output.text, terminator: "")
        if output.exitCode != 0 { throw ExitCode(output.exitCode) }
    } else {
        TailgateMain.writeToStandardError(output.text)
        throw ExitCode(output.exitCode)
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a running agent's state (from its /status endpoint) as a table.")

    @Option(help: "The health endpoint, as http://host:port or host:port (default: from the configuration's [health] listen).")
    var health: String?

    @Option(name: [.short, .long], help: "Configuration whose [health] listen to ask (default: /etc/tailgate/tailgate.toml if readable, else 127.0.0.1:9180).")
    var config: String?

    @Flag(help: "Print the JSON form of /status (what the status page reads) instead of the table.")
    var json = false

    func run() throws {
        do {
            let base: String
            if let health {
                base = health
            } else if let config {
                base = try StatusClient.base(configPath: config)
            } else {
                base = (try? StatusClient.base(configPath: "/etc/tailgate/tailgate.toml")) ?? "http://127.0.0.1:9180"
            }
            let text = try StatusClient.fetchText(base: base, json: json)
            print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
        } catch {
            TailgateMain.writeToStandardError("\(error)\n")
            throw ExitCode.failure
        }
    }
}

struct Ban: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ban sources in the kernel's ban sets through the agent's control socket (needs [bans] enabled = true).",
        subcommands: [Add.self, Remove.self, List.self]
    )

    struct SocketOptions: ParsableArguments {
        @Option(help: "The control socket (default: [bans] control_socket of the configuration, else /run/tailgate/control.sock).")
        var socket: String?

        @Option(name: [.short, .long], help: "Configuration whose [bans] control_socket to use.")
        var config: String = "/etc/tailgate/tailgate.toml"

        var path: String { BanClient.socketPath(explicit: socket, configPath: config) }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ban an address or prefix (dropped before tailgate sees it, Docker ports included).")
        @Argument(help: "An address (203.0.113.7, 2001:db8::1) or prefix (198.51.100.0/24, 2001:db8:1::/48).")
        var address: String
        @Option(name: .customLong("for"), help: "How long: 90s, 10m, 1h, 7d (default: [bans] default_duration).")
        var duration: String?
        @Option(help: "Why, and who asks (kept with the ban; `tailgate ban list` and `nft list` show it).")
        var reason: String?
        @OptionGroup var options: SocketOptions

        func run() throws {
            var seconds: Int64?
            if let duration {
                guard let parsed = BanClient.seconds(duration) else {
                    throw ValidationError("--for \(duration): expected a duration such as 90s, 10m, 1h or 7d")
                }
                seconds = parsed
            }
            try finish(BanClient.add(address, seconds: seconds, reason: reason, socket: options.path))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift the ban of an address or prefix (exactly as it was banned).")
        @Argument var address: String
        @OptionGroup var options: SocketOptions
        func run() throws { try finish(BanClient.remove(address, socket: options.path)) }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the bans: address, time left, duration, reason.")
        @OptionGroup var options: SocketOptions
        func run() throws { try finish(BanClient.list(socket: options.path)) }
    }
}

private func finish(_ outcome: BanClient.Outcome) throws {
    if outcome.exitCode == 0 {
        print(outcome.text, terminator: "")
    } else {
        TailgateMain.writeToStandardError(outcome.text)
        throw ExitCode(outcome.exitCode)
    }
}
