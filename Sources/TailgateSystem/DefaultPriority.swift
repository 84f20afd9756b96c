import Glibc

/// Runs async work from a synchronous `main` at the default task priority and waits for it on a semaphore.
///
/// An async `main` runs as a user-initiated task, and the tasks it starts inherit that; libdispatch on Linux
/// imitates the class by renicing their worker threads to -4, which an unprivileged service is refused
/// (EACCES) and reports as "Failed to set thread priority for worker thread" to the journal, once per
/// process. A detached task at `.medium` runs on threads that keep nice 0. The main thread blocks in
/// `sem_wait` rather than awaiting, since an await would raise the task to the waiter's priority.
///
/// (libdispatch's own event thread, which serves timers and signal sources, asks for -4 as well; the unit's
/// `LimitNICE=-4` lets it have that.)
public enum DefaultPriority {
    /// Runs `work` and returns whether it finished without throwing.
    public static func run(_ work: @escaping @Sendable () async throws -> Void) -> Bool {
        let done = Completion()
        Task.detached(priority: .medium) {
            do {
                try await work()
                done.finish(succeeded: true)
            } catch {
                done.finish(succeeded: false)
            }
        }
        return done.wait()
    }
}

/// A one-shot result with a POSIX semaphore to wait on.
private final class Completion: @unchecked Sendable {
    // The semaphore and the result: written by the task before sem_post, read by the waiter after sem_wait
    // (the semaphore orders them).
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    private var succeeded = false

    init() {
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func finish(succeeded: Bool) {
        self.succeeded = succeeded
        sem_post(semaphore)
    }

    func wait() -> Bool {
        while sem_wait(semaphore) != 0 {}  // EINTR: a signal arrived meanwhile
        return succeeded
    }
}
