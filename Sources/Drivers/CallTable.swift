import DriverABI
import JSON
import Dispatch
import Synchronization
import CHostSupport
import Threads
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The calls one driver generation holds: registered before the driver sees a call, removed
/// when the driver completes it. The C callbacks (`complete`, `is_cancelled`, `report_usage`)
/// reach it through the generation's `host_ctx` from any thread; a waiting Swift task is resumed
/// through its continuation, so a thousand calls in flight need no threads.
///
/// The host may stop waiting before the driver completes (deadline, cancel); the entry stays
/// until the driver's own `complete`, so `whenIdle` — which retires the generation — runs only
/// after the driver has completed every call it was given (the header's promise that `destroy`
/// follows the last completion).
final class CallTable: Sendable {
    private struct Entry {
        /// nil once the host stopped waiting (deadline or cancel) while the driver still runs.
        var continuation: CallWaiter?
        var cancelled: Bool
        var deadlineNanos: Int64?
        var usage: ToolUsage
        var label: String
        /// The driver instance the call was given to.
        var instance: ObjectIdentifier
        /// The thread that gave the driver the call (to tell an asynchronous completion).
        var callerThread: UInt
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        /// Ids cancelled before they were registered (task cancelled while starting).
        var cancelledEarly: Set<UInt64> = []
        /// Run once an instance holds no call (see `whenIdle`).
        var idleActions: [(instance: ObjectIdentifier, action: @Sendable () -> Void)] = []
    }

    private let state = Mutex(State())
    /// How the driver has answered so far (`drivers test` reads them; relaxed counters).
    let counters = CallCounters.Live()
    /// Call ids are unique in the process (logs and the driver see them), not per table.
    private static let nextId = Atomic<UInt64>(1)

    /// Every live table, for callbacks that arrive through another generation's `host_ctx`: an
    /// image mapped for several generations (a reload A→B→A, or one file loaded by two
    /// registries in a process) runs `init` again, and a driver that keeps the host pointer in
    /// a static (as DriverKit does) then reaches the host for the first one's calls through the
    /// latest `host_ctx`. Call ids are unique in the process, so the owner is never ambiguous.
    private static let live = Mutex<[ObjectIdentifier: WeakTable]>([:])
    private struct WeakTable: @unchecked Sendable { weak var table: CallTable? }

    init() {
        CallTable.live.withLock { $0[ObjectIdentifier(self)] = WeakTable(table: self) }
    }

    deinit {
        let key = ObjectIdentifier(self)
        CallTable.live.withLock { _ = $0.removeValue(forKey: key) }
    }

    /// How long past its deadline the host waits for the driver's own answer before giving up.
    static let deadlineGraceNanos: Int64 = 50_000_000

    func makeId() -> UInt64 { CallTable.nextId.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Registers a call before the driver sees it (the driver may complete inside `call`).
    /// Returns false if the call was already cancelled.
    func register(_ id: UInt64, label: String, instance: ObjectIdentifier, deadlineNanos: Int64?,
                  continuation: CallWaiter) -> Bool {
        let early = state.withLock { s -> Bool in
            if s.cancelledEarly.remove(id) != nil { return true }
            s.entries[id] = Entry(continuation: continuation, cancelled: false, deadlineNanos: deadlineNanos,
                                  usage: ToolUsage(), label: label, instance: instance, callerThread: CallTable.currentThread())
            return false
        }
        if early {
            continuation.resume(throwing: ToolCallError(kind: .cancelled, message: "\(label): cancelled before it started"))
            return false
        }
        if let deadline = deadlineNanos, !CallTable.sweeper.callStarted() {
            let wait = max(0, deadline + CallTable.deadlineGraceNanos - nova_monotonic_ns())
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(wait))) { [self] in
                self.giveUp(id, error: CallTable.deadlineError(label))
            }
        }
        return true
    }

    /// Gives up on calls past their deadline (and the grace) in every live table.
    private static let sweeper = DeadlineSweeper(periodMicros: 5_000) { now in
        var remaining = false
        for table in CallTable.live.withLock({ $0.values.compactMap(\.table) }) {
            if table.giveUpOverdue(now: now) { remaining = true }
        }
        return remaining
    }

    static func deadlineError(_ label: String) -> ToolCallError {
        ToolCallError(kind: .deadline, message: "\(label): deadline exceeded (the driver did not answer in time)")
    }

    /// Gives up every call still waited for whose deadline plus grace is before `now`; returns
    /// whether calls with a deadline are still waited for.
    private func giveUpOverdue(now: Int64) -> Bool {
        var remaining = false
        let overdue = state.withLock { s -> [(UInt64, String)] in
            var due: [(UInt64, String)] = []
            for (id, e) in s.entries where e.continuation != nil {
                guard let deadline = e.deadlineNanos else { continue }
                if deadline + CallTable.deadlineGraceNanos <= now { due.append((id, e.label)) } else { remaining = true }
            }
            return due
        }
        for (id, label) in overdue { giveUp(id, error: CallTable.deadlineError(label)) }
        return remaining
    }

    /// Runs `action` once `instance` holds no call: now when it holds none, else on a thread
    /// of its own right after its last completion (never inside the driver's `complete`, where
    /// a `destroy` that joins the driver's threads would wait for itself).
    func whenIdle(instance: ObjectIdentifier, _ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if !s.entries.values.contains(where: { $0.instance == instance }) { return true }
            s.idleActions.append((instance, action))
            return false
        }
        if now { action() }
    }

    /// Calls `instance` has been given and not completed (including abandoned ones).
    func held(by instance: ObjectIdentifier) -> Int { state.withLock { $0.entries.values.filter { $0.instance == instance }.count } }

    /// The driver's `complete`. Late completions (after the host gave up) are discarded.
    func complete(_ id: UInt64, status: Int32, output: [UInt8]) {
        if answer(for: id, { $0.completeHere(id, status: status, output: output) ? true : nil }) == nil {
            // A second `complete` for one call, or one for an id the host never gave.
            counters.strayCompletions.add(1, ordering: .relaxed)
        }
    }

    /// Whether this table still holds `id` (the driver has not completed it).
    func holds(_ id: UInt64) -> Bool { state.withLock { $0.entries[id] != nil } }

    /// Counts what `call` returned for `id`; a call that returned `NOVA_OK` must already be
    /// completed.
    func noteReturn(_ id: UInt64, status: Int32) {
        switch status {
        case Int32(NOVA_OK):
            counters.returnedOk.add(1, ordering: .relaxed)
            if holds(id) { counters.okBeforeComplete.add(1, ordering: .relaxed) }
        case Int32(NOVA_PENDING): counters.returnedPending.add(1, ordering: .relaxed)
        default: counters.refused.add(1, ordering: .relaxed)
        }
    }

    static func currentThread() -> UInt {
        #if canImport(Glibc)
        return UInt(pthread_self())
        #else
        return UInt(bitPattern: pthread_self())
        #endif
    }

    /// `body`'s answer (nil: the table does not hold `id`) from the table holding `id`: this one
    /// first, in one lock on the usual path, else — for a callback that reaches the host through
    /// another generation's `host_ctx` (see `live`) — the table that registered it.
    private func answer<T>(for id: UInt64, _ body: (CallTable) -> T?) -> T? {
        if let mine = body(self) { return mine }
        let others = CallTable.live.withLock { $0.values.compactMap(\.table) }
        for table in others where table !== self {
            if let theirs = body(table) { return theirs }
        }
        return nil
    }

    /// Completes `id` if this table holds it; false if it does not.
    private func completeHere(_ id: UInt64, status: Int32, output: [UInt8]) -> Bool {
        let found = state.withLock { s -> (CallWaiter?, Entry, [@Sendable () -> Void])? in
            guard let entry = s.entries.removeValue(forKey: id) else { return nil }
            var idle: [@Sendable () -> Void] = []
            if !s.idleActions.isEmpty, !s.entries.values.contains(where: { $0.instance == entry.instance }) {
                idle = s.idleActions.filter { $0.instance == entry.instance }.map(\.action)
                s.idleActions.removeAll { $0.instance == entry.instance }
            }
            return (entry.continuation, entry, idle)
        }
        guard let (continuation, entry, idle) = found else { return false }
        if entry.callerThread == CallTable.currentThread() {
            counters.completedOnCallingThread.add(1, ordering: .relaxed)
        } else {
            counters.completedOnOtherThread.add(1, ordering: .relaxed)
        }
        if !idle.isEmpty { PosixThread.detach { for action in idle { action() } } }
        guard let continuation else { return true }
        if status >= 0 {
            continuation.resume(returning: ToolCallResult(output: output, usage: entry.usage))
        } else {
            var error = CallTable.error(status: status, output: output, label: entry.label, usage: entry.usage)
            // `is_cancelled` also turns true at the deadline, so a driver may report "cancelled"
            // for a call nobody cancelled: the host knows which of the two it was.
            if error.kind == .cancelled, !entry.cancelled, let d = entry.deadlineNanos, nova_monotonic_ns() >= d {
                error.kind = .deadline
            }
            continuation.resume(throwing: error)
        }
        return true
    }

    /// The driver refused the call (negative status from `call`): complete is never coming.
    /// (If the driver completed it anyway, that completion already removed the entry.)
    func refuse(_ id: UInt64, status: Int32) {
        _ = answer(for: id) { $0.completeHere(id, status: status, output: []) ? true : nil }
    }

    /// `is_cancelled`: true once the call was cancelled or its deadline passed.
    func isCancelled(_ id: UInt64) -> Bool {
        answer(for: id) { table in
            table.state.withLock { s -> Bool? in
                guard let e = s.entries[id] else { return nil }
                return e.cancelled || e.deadlineNanos.map { nova_monotonic_ns() >= $0 } == true
            }
        } ?? false
    }

    func addUsage(_ id: UInt64, _ usage: ToolUsage) {
        _ = answer(for: id) { table in
            table.state.withLock { s -> Bool? in
                guard s.entries[id] != nil else { return nil }
                s.entries[id]!.usage += usage
                return true
            }
        }
    }

    /// Marks a call cancelled; the waiting task is resumed with `cancelled` right away and the
    /// driver's eventual completion is discarded.
    func cancel(_ id: UInt64) {
        let label = state.withLock { s -> String? in
            if s.entries[id] == nil { s.cancelledEarly.insert(id); return nil }
            s.entries[id]!.cancelled = true
            return s.entries[id]!.label
        }
        if let label { giveUp(id, error: ToolCallError(kind: .cancelled, message: "\(label): cancelled")) }
    }

    private func giveUp(_ id: UInt64, error: ToolCallError) {
        let continuation = state.withLock { s -> CallWaiter? in
            guard var e = s.entries[id], let c = e.continuation else { return nil }
            e.continuation = nil
            e.cancelled = true
            s.entries[id] = e
            return c
        }
        var err = error
        err.usage = state.withLock { $0.entries[id]?.usage } ?? ToolUsage()
        continuation?.resume(throwing: err)
    }

    /// Maps a negative status and the driver's error object to a `ToolCallError`.
    static func error(status: Int32, output: [UInt8], label: String, usage: ToolUsage) -> ToolCallError {
        let kind: ToolCallError.Kind
        switch status {
        case Int32(NOVA_ERR_INVALID_ARGUMENT): kind = .invalidArgument
        case Int32(NOVA_ERR_UNKNOWN_TOOL): kind = .unknownTool
        case Int32(NOVA_ERR_TOOL): kind = .tool
        case Int32(NOVA_ERR_CANCELLED): kind = .cancelled
        case Int32(NOVA_ERR_DEADLINE): kind = .deadline
        case Int32(NOVA_ERR_UNSUPPORTED): kind = .unsupported
        default: kind = .internal
        }
        var code = kind.rawValue
        var message = "\(label) failed (\(kind.rawValue), status \(status))"
        if !output.isEmpty, let obj = try? JSONValue.parse(output).objectValue {
            if let c = obj["code"]?.stringValue { code = c }
            if let m = obj["message"]?.stringValue { message = m }
        }
        return ToolCallError(kind: kind, code: code, message: message, source: "driver", usage: usage)
    }
}

/// Who waits for a call's answer: a suspended task, or — for a caller that is not a task, such
/// as the driver runner's reader thread — a callback, run on the thread that completes the call.
enum CallWaiter: Sendable {
    case task(CheckedContinuation<ToolCallResult, any Error>)
    case callback(@Sendable (Result<ToolCallResult, any Error>) -> Void)

    func resume(returning result: ToolCallResult) {
        switch self {
        case .task(let c): c.resume(returning: result)
        case .callback(let f): f(.success(result))
        }
    }

    func resume(throwing error: any Error) {
        switch self {
        case .task(let c): c.resume(throwing: error)
        case .callback(let f): f(.failure(error))
        }
    }
}

/// How a driver generation has answered its calls: what `call` returned, from which thread
/// `complete` came, and completions that broke the ABI's rules. `nova-host drivers test` reports
/// them; the host itself only counts.
public struct CallCounters: Sendable, Equatable {
    /// `call` returned `NOVA_OK` (completed before returning).
    public var returnedOk = 0
    /// `call` returned `NOVA_PENDING` (completes later).
    public var returnedPending = 0
    /// `call` returned a negative status (refused without `complete`).
    public var refused = 0
    /// Completions on the thread that made the call (inside `call`).
    public var completedOnCallingThread = 0
    /// Completions from another thread.
    public var completedOnOtherThread = 0
    /// `call` returned `NOVA_OK` but had not called `complete` (an ABI violation).
    public var okBeforeComplete = 0
    /// `complete` for a call already completed, or for an id never given (an ABI violation).
    public var strayCompletions = 0

    final class Live: Sendable {
        let returnedOk = Atomic<Int>(0), returnedPending = Atomic<Int>(0), refused = Atomic<Int>(0)
        let completedOnCallingThread = Atomic<Int>(0), completedOnOtherThread = Atomic<Int>(0)
        let okBeforeComplete = Atomic<Int>(0), strayCompletions = Atomic<Int>(0)

        var snapshot: CallCounters {
            CallCounters(returnedOk: returnedOk.load(ordering: .relaxed), returnedPending: returnedPending.load(ordering: .relaxed),
                         refused: refused.load(ordering: .relaxed),
                         completedOnCallingThread: completedOnCallingThread.load(ordering: .relaxed),
                         completedOnOtherThread: completedOnOtherThread.load(ordering: .relaxed),
                         okBeforeComplete: okBeforeComplete.load(ordering: .relaxed),
                         strayCompletions: strayCompletions.load(ordering: .relaxed))
        }
    }
}
