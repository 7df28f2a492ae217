import CShellSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The one long-lived thread that starts every sandbox helper (and, in the weaker mode, every
/// program) of this process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked a child exits, not the process. A
/// helper started from a Swift concurrency or Dispatch worker would be killed the moment that
/// worker retires. This thread is started once, never exits (the driver image is never
/// unloaded), and only ever runs spawn jobs, so the helper's parent-death signal fires exactly
/// when the host process dies.
final class SpawnThread: @unchecked Sendable {
    // @unchecked: `pending` is a POSIX semaphore, itself thread-safe; the pointer never changes.
    /// The process-wide instance.
    static let shared = SpawnThread()

    private struct Queue {
        var jobs: [@Sendable () -> Void] = []
    }

    private let queue = Mutex(Queue())
    /// Counts queued jobs; the thread sleeps on it.
    private let pending: UnsafeMutablePointer<sem_t>
    /// The thread's kernel id, for tests and diagnostics.
    let threadId = Atomic<Int32>(0)

    private init() {
        pending = .allocate(capacity: 1)
        sem_init(pending, 0, 0)
        let box = Unmanaged.passRetained(self).toOpaque()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        var tid = pthread_t()
        let rc = pthread_create(&tid, &attr, { arg in
            let me = Unmanaged<SpawnThread>.fromOpaque(arg!).takeUnretainedValue()
            me.loop()
            return nil
        }, box)
        pthread_attr_destroy(&attr)
        precondition(rc == 0, "shell driver: cannot start the spawn thread: \(String(cString: strerror(rc)))")
    }

    private func loop() {
        threadId.store(nova_shell_thread_setup("nova-shell-spawn"), ordering: .releasing)
        // Every signal blocked: host signal handlers run elsewhere, and posix_spawn/fork reset
        // the child's mask explicitly.
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
        while true {
            while sem_wait(pending) != 0 {}
            let job = queue.withLock { q -> (@Sendable () -> Void)? in q.jobs.isEmpty ? nil : q.jobs.removeFirst() }
            job?()
        }
    }

    /// Runs `body` on the spawn thread and returns its result; the caller blocks meanwhile (call
    /// it from a thread that may block, never from the cooperative pool).
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let slot = Slot<T>()
        queue.withLock { $0.jobs.append { slot.fill(body()) } }
        sem_post(pending)
        return slot.take()
    }
}

/// One job's result, handed from the spawn thread to the waiting caller.
private final class Slot<T>: @unchecked Sendable {
    // @unchecked: `value` is written once by the spawn thread before `sem_post` and read by the
    // caller only after `sem_wait` returned (the semaphore orders the two).
    private var value: T?
    private let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init() { sem_init(done, 0, 0) }
    deinit {
        sem_destroy(done)
        done.deallocate()
    }

    func fill(_ v: T) {
        value = v
        sem_post(done)
    }

    func take() -> T {
        while sem_wait(done) != 0 {}
        return value!
    }
}
