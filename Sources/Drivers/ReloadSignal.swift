import Dispatch
import HostSupport
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
