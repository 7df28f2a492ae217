import Dispatch
import DriverABI
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Hot reload on SIGHUP: each signal rescans the drivers directory (`DriverRegistry.reload`).
/// Reloads never overlap; signals that arrive during one trigger one more afterwards.
public final class ReloadOnSignal: Sendable {
    private let subscription: SignalPipe.Subscription

    /// Starts listening; keep the returned object alive. `report` sees each reload's outcome.
    public init(registry: DriverRegistry, signal number: Int32 = SIGHUP, report: @escaping @Sendable (ReloadReport) -> Void = { _ in }) {
        subscription = SignalPipe.subscribe(number) {
            // Runs on the signal thread: finish this reload before reading the next signal.
            let done = DispatchSemaphore(value: 0)
            Task {
                report(await registry.reload())
                done.signal()
            }
            done.wait()
        }
    }

    /// Stops listening (the signal stays caught, so it no longer terminates the process).
    public func cancel() { subscription.cancel() }

    deinit { subscription.cancel() }
}

/// Signals delivered as events on a thread of their own. A `sigaction` handler writes a byte to
/// a pipe (`nova_signal_pipe`), so the signal is seen whichever thread the kernel delivers it
/// to. A dispatch signal source is not used because on Linux it relies on the signal being
/// blocked in every thread, and threads that drivers start (or that were running before) do
/// not block it: the kernel then delivers it to such a thread, where it is ignored.
public enum SignalPipe {
    /// One subscriber's registration; `cancel` removes it.
    public final class Subscription: Sendable {
        let signal: Int32
        let id: UInt64
        init(signal: Int32, id: UInt64) { (self.signal, self.id) = (signal, id) }
        public func cancel() { SignalPipe.unsubscribe(self) }
    }

    private struct State {
        var readers: Set<Int32> = []
        var subscribers: [Int32: [UInt64: @Sendable () -> Void]] = [:]
        var nextId: UInt64 = 1
    }
    private static let state = Mutex(State())

    /// Calls `handler` (on the signal's thread, one call at a time) after each delivery of
    /// `signal`; deliveries that arrive while handlers run are coalesced into one more call.
    public static func subscribe(_ signal: Int32, handler: @escaping @Sendable () -> Void) -> Subscription {
        let (id, needsReader) = state.withLock { s -> (UInt64, Bool) in
            let id = s.nextId
            s.nextId += 1
            s.subscribers[signal, default: [:]][id] = handler
            return (id, s.readers.insert(signal).inserted)
        }
        if needsReader { startReader(signal) }
        return Subscription(signal: signal, id: id)
    }

    static func unsubscribe(_ s: Subscription) {
        _ = state.withLock { $0.subscribers[s.signal]?.removeValue(forKey: s.id) }
    }

    private static func startReader(_ signal: Int32) {
        let fd = nova_signal_pipe(signal)
        guard fd >= 0 else {
            // Without a handler the signal keeps its default action; say why reload is off.
            FileHandle.standardError.write(Data("nova-host: cannot catch signal \(signal): \(String(cString: strerror(errno)))\n".utf8))
            return
        }
        PosixThread.detach {
            var buffer = [UInt8](repeating: 0, count: 64)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                let handlers = state.withLock { Array(($0.subscribers[signal] ?? [:]).sorted { $0.key < $1.key }.map(\.value)) }
                for handler in handlers { handler() }
            }
        }
    }
}

/// `<data>/serve.pid`: how `nova-host drivers reload` finds a running `nova-host serve`.
public enum ServePidFile {
    public static func path(dataDirectory: String) -> String { dataDirectory + "/serve.pid" }

    /// Writes this process's pid (the server calls it at start).
    public static func write(dataDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try "\(getpid())\n".write(toFile: path(dataDirectory: dataDirectory), atomically: true, encoding: .utf8)
    }

    /// Removes the file if it still names this process.
    public static func remove(dataDirectory: String) {
        if read(dataDirectory: dataDirectory) == getpid() { try? FileManager.default.removeItem(atPath: path(dataDirectory: dataDirectory)) }
    }

    /// The pid of a live server, or nil (no file, or its process is gone).
    public static func read(dataDirectory: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: path(dataDirectory: dataDirectory), encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else { return nil }
        return kill(pid, 0) == 0 || errno == EPERM ? pid : nil
    }
}
