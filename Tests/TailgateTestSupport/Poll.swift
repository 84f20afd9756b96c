import Glibc

/// Waiting for a condition with a deadline, the one way tests wait for something to happen.
public enum Poll {
    /// Checks `condition` every `interval` seconds until it holds (true) or `timeout` seconds have passed
    /// (false, after a last check).
    public static func until(timeout: Double, every interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            usleep(UInt32(interval * 1_000_000))
        }
        return try condition()
    }

    /// The same for a condition that suspends: checked every `interval` seconds, without holding a thread
    /// between checks.
    public static func until(
        timeout: Double, every interval: Double = 0.05, _ condition: () async throws -> Bool
    ) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .seconds(interval))
        }
        return try await condition()
    }
}
