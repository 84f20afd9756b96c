/// One part of the reload transaction (the listeners, then the firewall).
///
/// `prepare` does everything that can fail and can be undone (binding new sockets, building rules);
/// the transaction then commits every prepared step, or rolls back the prepared ones in reverse order.
protocol ReloadStep: Sendable {
    /// Shown in logs when the step fails.
    var name: String { get }
    func prepare(_ plan: ProxyPlan) async throws -> PreparedStep
}

/// What a prepared step will do on commit, or undo on rollback. Neither may fail.
struct PreparedStep: Sendable {
    let commit: @Sendable () async -> Void
    let rollback: @Sendable () async -> Void
}

/// Runs `steps` as one transaction.
enum ReloadTransaction {
    struct StepFailed: Error, CustomStringConvertible {
        let step: String
        let underlying: any Error
        var description: String { "\(underlying)" }
    }

    static func run(_ steps: [any ReloadStep], plan: ProxyPlan) async throws(StepFailed) {
        var prepared: [PreparedStep] = []
        for step in steps {
            do {
                prepared.append(try await step.prepare(plan))
            } catch {
                for change in prepared.reversed() { await change.rollback() }
                throw StepFailed(step: step.name, underlying: error)
            }
        }
        for change in prepared { await change.commit() }
    }
}
