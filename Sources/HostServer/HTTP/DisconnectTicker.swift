import Synchronization

/// One clock shared by the disconnect watchers of all requests in flight
/// (`ServerContext.cancellingOnDisconnect`): a watcher waits here for the next tick instead of
/// arming a timer of its own. A `Task.sleep` per request put a Dispatch timer per request on
/// the timer heap — nearly all cancelled long before they would fire, still kept until then —
/// which cost about 7 % of the server's CPU under tool-call load. One sleeping task serves
/// every waiter; it exists only while someone waits.
final class DisconnectTicker: Sendable {
    /// The clock of `cancellingOnDisconnect`: a few checks a second.
    static let shared = DisconnectTicker(periodMs: 200)

    private struct State {
        var nextId: UInt64 = 0
        var waiting: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// Waiters cancelled before they registered (the cancellation handler ran first).
        var cancelledEarly: Set<UInt64> = []
        var ticking = false
    }

    private let periodMs: Int
    private let state = Mutex(State())

    init(periodMs: Int) { self.periodMs = periodMs }

    /// Waits for the next tick: `true` then, `false` at once if the task is cancelled.
    func nextTick() async -> Bool {
        let id = state.withLock { s in
            s.nextId &+= 1
            return s.nextId
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let (startTicking, cancelled) = state.withLock { s -> (Bool, Bool) in
                    if s.cancelledEarly.remove(id) != nil { return (false, true) }
                    s.waiting[id] = c
                    if s.ticking { return (false, false) }
                    s.ticking = true
                    return (true, false)
                }
                if cancelled { c.resume(returning: false) }
                if startTicking { Task.detached { await self.tick() } }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Bool, Never>? in
                if let c = s.waiting.removeValue(forKey: id) { return c }
                s.cancelledEarly.insert(id)
                return nil
            }
            c?.resume(returning: false)
        }
    }

    /// Resumes every waiter once a period; ends when a tick finds nobody waiting.
    private func tick() async {
        while true {
            try? await Task.sleep(for: .milliseconds(periodMs))
            let due = state.withLock { s -> [CheckedContinuation<Bool, Never>]? in
                if s.waiting.isEmpty {
                    s.ticking = false
                    return nil
                }
                defer { s.waiting.removeAll(keepingCapacity: true) }
                return Array(s.waiting.values)
            }
            guard let due else { return }
            for c in due { c.resume(returning: true) }
        }
    }
}
