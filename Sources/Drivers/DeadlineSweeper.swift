import CHostSupport
import Synchronization
import Threads
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Gives up on in-process calls past their deadline: one thread that sweeps every call table
/// every `periodMicros` while any call with a deadline is in flight, and exits when none is.
///
/// It replaces a Dispatch timer per call (`asyncAfter` at deadline + grace): under tool-call
/// load those timers — nearly all for calls that had long finished, each still kept and fired
/// (a worker thread woken) at its deadline, 10 s later with the server's default timeout —
/// cost the server a few per cent of its CPU and tens of thousands of pending timers. A call
/// now costs one lock and a counter; a deadline is noticed at most one period late, well
/// inside the grace the host already allows (`CallTable.deadlineGraceNanos`).
final class DeadlineSweeper: Sendable {
    private struct State {
        var running = false
        /// Bumped by every `callStarted`: a sweep that found nothing exits only if no call
        /// started meanwhile.
        var started: UInt64 = 0
    }

    private let state = Mutex(State())
    private let periodMicros: UInt32
    /// Gives up what is overdue at `now`; returns whether calls with a deadline remain.
    private let sweep: @Sendable (_ now: Int64) -> Bool

    init(periodMicros: UInt32, sweep: @escaping @Sendable (_ now: Int64) -> Bool) {
        self.periodMicros = periodMicros
        self.sweep = sweep
    }

    /// A call with a deadline was registered. Returns false if no sweeping thread can run
    /// (none could be created): the caller then arms a timer of its own.
    func callStarted() -> Bool {
        let start = state.withLock { s -> Bool in
            s.started &+= 1
            if s.running { return false }
            s.running = true
            return true
        }
        guard start else { return true }
        if PosixThread.tryDetach(stackSize: 256 << 10, { self.run() }) { return true }
        state.withLock { $0.running = false }
        return false
    }

    private func run() {
        while true {
            let seen = state.withLock { $0.started }
            usleep(periodMicros)
            if sweep(nova_monotonic_ns()) { continue }
            let stop = state.withLock { s -> Bool in
                guard s.started == seen else { return false }
                s.running = false
                return true
            }
            if stop { return }
        }
    }
}
