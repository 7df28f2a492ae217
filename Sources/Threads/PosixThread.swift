#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A joinable POSIX thread running a closure, and `detach` for fire-and-forget threads: blocking
/// work (fsync, waitpid, a signal pipe) runs here rather than on the cooperative pool.
public final class PosixThread: @unchecked Sendable {
    private let tid: pthread_t

    /// Starts `body` on a new joinable thread (a failure to create one is a programming error).
    public init(_ body: @escaping @Sendable () -> Void) {
        switch Self.start(body) {
        case .success(let tid): self.tid = tid
        case .failure(let rc): preconditionFailure("pthread_create failed: \(rc)")
        }
    }

    /// Waits for the thread to end.
    public func join() { pthread_join(tid, nil) }

    /// Runs `body` on a new detached thread (inline if no thread can be created).
    public static func detach(_ body: @escaping @Sendable () -> Void) {
        if !tryDetach(body) { body() }
    }

    /// Starts `body` on a new detached thread; false (and `body` not run) if none can be created.
    /// `stackSize` (bytes) overrides the default stack, for threads that only wait on I/O.
    public static func tryDetach(stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) -> Bool {
        guard case .success(let tid) = start(body, stackSize: stackSize) else { return false }
        pthread_detach(tid)
        return true
    }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ b: @escaping @Sendable () -> Void) { body = b }
    }

    private struct CreateError: Error { let rc: Int32 }

    /// pthread_create with `body` as the thread's work; the thread owns the box.
    private static func start(_ body: @escaping @Sendable () -> Void, stackSize: Int? = nil) -> Result<pthread_t, CreateError> {
        let box = Unmanaged.passRetained(Box(body))
        var tid = pthread_t()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        if let stackSize { pthread_attr_setstacksize(&attr, stackSize) }
        let rc = pthread_create(&tid, &attr, { raw in
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
