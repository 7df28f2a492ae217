import Glibc
import NIOCore
import Synchronization

/// Cancels the task of a request whose client has left while its work runs
/// (`ServerContext.cancellingOnDisconnect`).
///
/// Hummingbird never cancels a handler, and while a response is pending the HTTP pipeline stops
/// reading, so the client's FIN is not seen as an event: the kernel's view of each watched
/// connection (`TCP_INFO` state leaving ESTABLISHED, or the channel closed) is checked a few
/// times a second by one task, which exists only while something is watched.
///
/// A request costs a registration in a table, not a task: the work runs in the request's own
/// task, and the check cancels that task. (A watcher task and a work task per request in a task
/// group cost ~5 % of the server's CPU per tool call; a `Task.sleep` or a `closeFuture` callback
/// per request piled up timers or callbacks for as long as a connection lived.)
final class DisconnectWatch: Sendable {
    /// The watch of every request: a check every 200 ms.
    static let shared = DisconnectWatch(periodMs: 200)

    /// A request being watched: its connection and how to cancel its task.
    private struct Watched: Sendable {
        let channel: any Channel
        let socket: any SocketOptionProvider
        let task: TaskCanceller
    }

    private struct State {
        var nextId: UInt64 = 0
        var watched: [UInt64: Watched] = [:]
        var checking = false
    }

    private let periodMs: Int
    private let state = Mutex(State())

    init(periodMs: Int) { self.periodMs = periodMs }

    /// Runs `work` in the current task; if the client of `channel` leaves first, the task is
    /// cancelled (so is `work`, and whatever the task awaits after it: the client is gone).
    /// A connection whose socket cannot be queried is not watched.
    func run<T>(on channel: any Channel, _ work: () async -> T) async -> T {
        guard let socket = channel as? any SocketOptionProvider else { return await work() }
        return await withUnsafeCurrentTask { task in
            guard let task else { return await work() }
            let id = add(Watched(channel: channel, socket: socket, task: TaskCanceller(task)))
            // Unregistered before the task can end: the check cancels only registered tasks,
            // under the same lock, so it never touches a task that is gone.
            defer { remove(id) }
            return await work()
        }
    }

    private func add(_ w: Watched) -> UInt64 {
        let (id, start) = state.withLock { s -> (UInt64, Bool) in
            s.nextId &+= 1
            s.watched[s.nextId] = w
            if s.checking { return (s.nextId, false) }
            s.checking = true
            return (s.nextId, true)
        }
        if start { Task.detached { await self.check() } }
        return id
    }

    private func remove(_ id: UInt64) {
        _ = state.withLock { $0.watched.removeValue(forKey: id) }
    }

    /// Once a period, cancels the tasks of the requests whose client left; ends when nothing is
    /// watched.
    private func check() async {
        while true {
            try? await Task.sleep(for: .milliseconds(periodMs))
            let watched = state.withLock { s -> [(key: UInt64, value: Watched)]? in
                if s.watched.isEmpty {
                    s.checking = false
                    return nil
                }
                return Array(s.watched)
            }
            guard let watched else { return }
            for (id, w) in watched where await Self.clientLeft(w) {
                // Cancelled under the lock, and only if still registered: the task is alive.
                // The task's cancellation handlers run here; none of them takes this lock.
                state.withLock { s in
                    if s.watched.removeValue(forKey: id) != nil { w.task.cancel() }
                }
            }
        }
    }

    private static func clientLeft(_ w: Watched) async -> Bool {
        guard w.channel.isActive, let info = try? await w.socket.getTCPInfo().get() else { return true }
        return info.tcpi_state != UInt8(TCP_ESTABLISHED)
    }
}

/// The task of a watched request, cancellable from the check's task. `UnsafeCurrentTask` is not
/// `Sendable` because it does not keep its task alive; `DisconnectWatch` cancels it only while
/// the request is registered, which the task itself ends before it can finish.
private final class TaskCanceller: @unchecked Sendable {
    private let task: UnsafeCurrentTask
    init(_ task: UnsafeCurrentTask) { self.task = task }
    func cancel() { task.cancel() }
}
