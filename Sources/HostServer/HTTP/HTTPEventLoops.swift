import NIOCore
import NIOPosix
import Synchronization

/// The event loop groups the HTTP server runs on, one per thread count, made once and kept for
/// the life of the process (as NIO's own singleton is): servers started and stopped in one
/// process, as in the tests, share them instead of leaking threads.
///
/// The default is half the cores, at least one, not NIO's one per core: a request's work (the
/// run, its policy, its episode) runs on Swift's concurrency pool, which already has a thread
/// per core, and event loops on every core as well contend with it. On the 2-core development
/// VM one event loop thread instead of two served 5–15 % more tool calls per second with less
/// CPU per call (docs/server.md#benchmarks); plain I/O-bound routes (`GET /health`) lose some
/// of their much higher rate.
enum HTTPEventLoops {
    /// Half the cores, at least one.
    static var defaultThreads: Int { max(1, System.coreCount / 2) }

    private static let groups = Mutex<[Int: MultiThreadedEventLoopGroup]>([:])

    /// The process's group of `threads` event loops.
    static func group(threads: Int) -> MultiThreadedEventLoopGroup {
        let threads = max(1, threads)
        return groups.withLock { groups in
            if let g = groups[threads] { return g }
            let g = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            groups[threads] = g
            return g
        }
    }
}
