import ArgumentParser
import TailgateAgent

@main
struct Tailgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tailgate",
        abstract: "TLS-passthrough SNI proxy with PROXY protocol, for hosts on a tailnet.",
        version: TailgateVersion.current,
        subcommands: [Run.self, Check.self]
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: [.short, .long], help: "Path of the configuration file.")
    var config = "/etc/tailgate/tailgate.toml"
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the agent until SIGTERM or SIGINT.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        do {
            try await TailgateMain.run(configPath: options.config)
        } catch {
            throw ExitCode.failure
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate the configuration file and exit (like nginx -t).")

    @OptionGroup var options: ConfigOption

    func run() throws {
        if let errors = TailgateMain.check(configPath: options.config) {
            var standardError = StandardError()
            print(errors, to: &standardError)
            throw ExitCode(1)
        }
        print("\(options.config): configuration is valid")
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        TailgateMain.writeToStandardError(string)
    }
}
