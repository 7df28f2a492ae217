#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A joinable POSIX thread running a closure, and `detach` for fire-and-forget threads: blocking
/// work (fsync, waitpid, a signal pipe) runs here rather than on the cooperative pool.
final class PosixThread: @unchecked Sendable {
    private let tid: pthread_t

    init(_ body: @escaping @Sendable () -> Void) {
        switch Self.start(body) {
        case .success(let tid): self.tid = tid
        case .failure(let rc): preconditionFailure("pthread_create failed: \(rc)")
        }
    }

    func join() { pthread_join(tid, nil) }

    /// Runs `body` on a new detached thread (inline if no thread can be created).
    static func detach(_ body: @escaping @Sendable () -> Void) {
        if !tryDetach(body) { body() }
    }

    /// Starts `body` on a new detached thread; false (and `body` not run) if none can be created.
    static func tryDetach(_ body: @escaping @Sendable () -> Void) -> Bool {
        guard case .success(let tid) = start(body) else { return false }
        pthread_detach(tid)
        return true
    }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ b: @escaping @Sendable () -> Void) { body = b }
    }

    private struct CreateError: Error { let rc: Int32 }

    /// pthread_create with `body` as the thread's work; the thread owns the box.
    private static func start(_ body: @escaping @Sendable () -> Void) -> Result<pthread_t, CreateError> {
        let box = Unmanaged.passRetained(Box(body))
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            #if canImport(Darwin)
            let b = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            #else
            let b = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            #endif
            b.body()
            return nil
        }, box.toOpaque())
        if rc != 0 { box.release(); return .failure(CreateError(rc: rc)) }
        return .success(tid)
    }
}
