import Dispatch
import Synchronization

/// Starts long-lived child processes from one thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. A
/// driver runner spawned from a transient thread (a Dispatch worker, a thread of the cooperative
/// pool that the runtime retires) is SIGKILLed when that thread goes, seconds into a long call.
/// Every `posix_spawn` of a child that arms PDEATHSIG goes through `SpawnThread.run` (one such
/// thread per image: the host's, and one in each driver library that links this target).
public enum SpawnThread {
    private final class Job: @unchecked Sendable {
        let body: () -> Void
        let done = DispatchSemaphore(value: 0)
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private static let queue = Mutex<[Job]>([])
    private static let wake = DispatchSemaphore(value: 0)
    /// The thread, started on first use; it never exits.
    private static let thread: PosixThread = PosixThread {
        while true {
            wake.wait()
            guard let job = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            job.body()
            job.done.signal()
        }
    }

    /// Runs `body` on the spawn thread and returns its result; blocks the caller until then
    /// (keep `body` short: a `posix_spawn`, not the handshake that follows). `body` is escaping
    /// because the job that carries it may be released by the spawn thread after we return.
    public static func run<T>(_ body: @escaping () -> T) -> T {
        _ = thread
        var result: T?
        let job = Job { result = body() }
        queue.withLock { $0.append(job) }
        wake.signal()
        job.done.wait()
        return result!
    }
}
