import DriverABI
import Dispatch
import Synchronization

/// Counts calls that a driver instance has accepted and not yet completed, so that an
/// instance is destroyed (and a generation shut down) only when it is idle.
public final class InFlightCounter: Sendable {
    private let count = Atomic<Int>(0)
    public init() {}
    public var value: Int { count.load(ordering: .acquiring) }
    func increment() { count.add(1, ordering: .relaxed) }
    func decrement() { count.subtract(1, ordering: .releasing) }
}

/// Every native call in flight in this process, keyed by call id. The C callbacks
/// (`complete`, `is_cancelled`, `report_usage`) land here from any thread; a waiting Swift task
/// is resumed through its continuation, so a thousand calls in flight need no threads.
final class CallTable: Sendable {
    static let shared = CallTable()

    private struct Entry {
        /// nil once the host stopped waiting (deadline or cancel) while the driver still runs.
        var continuation: CheckedContinuation<ToolCallResult, any Error>?
        var cancelled: Bool
        var deadlineNanos: Int64?
        var usage: ToolUsage
        var counter: InFlightCounter
        var label: String
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        /// Ids cancelled before they were registered (task cancelled while starting).
        var cancelledEarly: Set<UInt64> = []
    }

    private let state = Mutex(State())
    private let nextId = Atomic<UInt64>(1)

    /// How long past its deadline the host waits for the driver's own answer before giving up.
    static let deadlineGraceNanos: Int64 = 50_000_000

    func makeId() -> UInt64 { nextId.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Registers a call before the driver sees it (the driver may complete inside `call`).
    /// Returns false if the call was already cancelled.
    func register(_ id: UInt64, label: String, deadlineNanos: Int64?, counter: InFlightCounter,
                  continuation: CheckedContinuation<ToolCallResult, any Error>) -> Bool {
        let early = state.withLock { s -> Bool in
            if s.cancelledEarly.remove(id) != nil { return true }
            s.entries[id] = Entry(continuation: continuation, cancelled: false, deadlineNanos: deadlineNanos,
                                  usage: ToolUsage(), counter: counter, label: label)
            return false
        }
        if early {
            continuation.resume(throwing: ToolCallError(kind: .cancelled, message: "\(label): cancelled before it started"))
            return false
        }
        counter.increment()
        if let deadline = deadlineNanos {
            let wait = max(0, deadline + CallTable.deadlineGraceNanos - nova_monotonic_ns())
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(wait))) { [self] in
                self.giveUp(id, error: ToolCallError(kind: .deadline, message: "\(label): deadline exceeded (the driver did not answer in time)"))
            }
        }
        return true
    }

    /// The driver's `complete`. Late completions (after the host gave up) are discarded.
    func complete(_ id: UInt64, status: Int32, output: [UInt8]) {
        let found = state.withLock { s -> (CheckedContinuation<ToolCallResult, any Error>?, Entry)? in
            guard let entry = s.entries.removeValue(forKey: id) else { return nil }
            return (entry.continuation, entry)
        }
        guard let (continuation, entry) = found else { return }
        entry.counter.decrement()
        guard let continuation else { return }
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
    }

    /// The driver refused the call (negative status from `call`): complete is never coming.
    func refuse(_ id: UInt64, status: Int32) {
        complete(id, status: status, output: [])
    }

    /// `is_cancelled`: true once the call was cancelled or its deadline passed.
    func isCancelled(_ id: UInt64) -> Bool {
        state.withLock { s in
            guard let e = s.entries[id] else { return false }
            if e.cancelled { return true }
            if let d = e.deadlineNanos, nova_monotonic_ns() >= d { return true }
            return false
        }
    }

    func addUsage(_ id: UInt64, _ usage: ToolUsage) {
        state.withLock { s in s.entries[id]?.usage += usage }
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

    /// Calls whose driver has not completed yet (including abandoned ones).
    var inFlight: Int { state.withLock { $0.entries.count } }

    private func giveUp(_ id: UInt64, error: ToolCallError) {
        let continuation = state.withLock { s -> CheckedContinuation<ToolCallResult, any Error>? in
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

import JSON
