/// Runs blocking work (waitpid, a child's pipes, a compiler) on a thread of its own, so that it
/// never occupies one of the cooperative pool's threads: on a 2-core machine the pool has two,
/// and one blocked thread halves the throughput of every task in the process.
public enum OffPool {
    /// Runs `body` on a new detached thread and returns its result to the awaiting task.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            PosixThread.detach {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    /// `run` for work that cannot fail.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            PosixThread.detach { continuation.resume(returning: body()) }
        }
    }
}
