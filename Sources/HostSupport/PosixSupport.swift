import Threads
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `strerror` text for an errno value.
package func errnoText(_ code: Int32) -> String {
    if let s = strerror(code) { return String(cString: s) }
    return "errno \(code)"
}

/// A mutex with one condition variable (pthread), for the episode writer's leader/follower
/// group commit, where waiting on a condition is needed.
package final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        // CLOCK_MONOTONIC, so that `wait(timeoutNs:)` is immune to wall-clock steps.
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits on the condition; the caller holds the lock.
    package func wait() { pthread_cond_wait(cond, mutex) }
    /// Waits on the condition for at most `timeoutNs`; the caller holds the lock.
    package func wait(timeoutNs: Int) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = Int(now.tv_nsec) + timeoutNs
        var deadline = timespec(tv_sec: now.tv_sec + total / 1_000_000_000, tv_nsec: total % 1_000_000_000)
        pthread_cond_timedwait(cond, mutex, &deadline)
    }
    package func broadcast() { pthread_cond_broadcast(cond) }

    package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A small fixed pool of threads that runs blocking jobs (fsync) in parallel, so that the
/// kernel can merge the journal commits of several files into one. Shared by all stores.
package final class BlockingJobPool: @unchecked Sendable {
    package static let shared = BlockingJobPool(threads: 8)

    private let lock = ConditionLock()
    private var jobs: [() -> Void] = []
    private let threadCount: Int
    private var started = 0

    init(threads: Int) { threadCount = threads }

    /// Runs every job and returns when all have finished. The calling thread runs jobs too,
    /// so the pool never deadlocks even if no thread could be started.
    package func runAll(_ work: [() -> Void]) {
        if work.isEmpty { return }
        if work.count == 1 { work[0](); return }
        let group = CountDown(work.count - 1)
        lock.withLock {
            for job in work.dropLast() {
                jobs.append { job(); group.done() }
            }
            while started < min(threadCount, jobs.count) {
                guard startThread() else { break }
                started += 1
            }
            lock.broadcast()
        }
        work[work.count - 1]()
        while true {
            lock.lock()
            let job = jobs.isEmpty ? nil : jobs.removeFirst()
            lock.unlock()
            guard let job else { break }
            job()
        }
        group.wait()
    }

    private func startThread() -> Bool {
        PosixThread.tryDetach { self.loop() }
    }

    private func loop() {
        while true {
            lock.lock()
            while jobs.isEmpty { lock.wait() }
            let job = jobs.removeFirst()
            lock.unlock()
            job()
        }
    }
}

/// Waits until `done()` has been called `count` times.
final class CountDown: @unchecked Sendable {
    private let lock = ConditionLock()
    private var remaining: Int

    init(_ count: Int) { remaining = count }

    func done() {
        lock.withLock {
            remaining -= 1
            if remaining <= 0 { lock.broadcast() }
        }
    }

    func wait() {
        lock.lock()
        while remaining > 0 { lock.wait() }
        lock.unlock()
    }
}
