import NIOConcurrencyHelpers
import Testing
@testable import TailgateAgent
import TailgateConfig

/// A step that records what the transaction did with it.
private struct RecordingStep: ReloadStep {
    let name: String
    let fails: Bool
    let journal: NIOLockedValueBox<[String]>

    func prepare(_ plan: ProxyPlan) async throws -> PreparedStep {
        if fails {
            journal.withLockedValue { $0.append("\(name): prepare failed") }
            throw StepError()
        }
        journal.withLockedValue { $0.append("\(name): prepared") }
        return PreparedStep(
            commit: { journal.withLockedValue { $0.append("\(name): committed") } },
            rollback: { journal.withLockedValue { $0.append("\(name): rolled back") } }
        )
    }

    struct StepError: Error {}
}

private func plan() throws -> ProxyPlan {
    let configuration = try ConfigurationLoader.load(text: """
        [listeners.a]
        bind = ["127.0.0.1:1"]
        default = "u"
        [upstreams.u]
        servers = ["127.0.0.1:2"]
        """, file: "t.toml")
    return try ProxyPlan.make(configuration, file: "t.toml", generation: 1, names: ResolvedNames(), usage: .init(logger: .init(label: "test")))
}

@Test func everyStepCommitsWhenAllPrepare() async throws {
    let journal = NIOLockedValueBox<[String]>([])
    let steps: [any ReloadStep] = ["listeners", "firewall", "checks"].map { RecordingStep(name: $0, fails: false, journal: journal) }
    try await ReloadTransaction.run(steps, plan: try plan())
    #expect(journal.withLockedValue { $0 } == [
        "listeners: prepared", "firewall: prepared", "checks: prepared",
        "listeners: committed", "firewall: committed", "checks: committed",
    ])
}

@Test func aFailingStepRollsBackThePreparedOnesInReverseAndCommitsNothing() async throws {
    let journal = NIOLockedValueBox<[String]>([])
    let steps: [any ReloadStep] = [
        RecordingStep(name: "listeners", fails: false, journal: journal),
        RecordingStep(name: "health", fails: false, journal: journal),
        RecordingStep(name: "firewall", fails: true, journal: journal),
        RecordingStep(name: "never", fails: false, journal: journal),
    ]
    await #expect(throws: ReloadTransaction.StepFailed.self) { try await ReloadTransaction.run(steps, plan: try plan()) }
    #expect(journal.withLockedValue { $0 } == [
        "listeners: prepared", "health: prepared", "firewall: prepare failed",
        "health: rolled back", "listeners: rolled back",
    ])
}

@Test func theConfigHashIsTheFilesSHA256() {
    #expect(ContentHash.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
}

@Test func notifyAddressesAreUnderstood() {
    #expect(SystemdNotifier(environment: "/run/systemd/notify").isEnabled)
    #expect(SystemdNotifier(environment: "@abstract").isEnabled)
    #expect(!SystemdNotifier(environment: nil).isEnabled)
    #expect(!SystemdNotifier(environment: "relative/path").isEnabled)
}
