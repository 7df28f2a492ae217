import CHostSupport
import Foundation
import Synchronization
import Threads
#if canImport(Glibc)
import Glibc
#endif

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
