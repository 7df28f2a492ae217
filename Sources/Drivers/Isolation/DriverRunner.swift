import Foundation
import CHostSupport
import JSON
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The child side of process isolation (`nova-host driver-runner`): loads one driver library in
/// this process and serves the host's frames on `fd` until the host closes the socket.
public enum DriverRunner {
    /// Runs until the host goes away. Never returns normally: exits the process.
    public static func run(name: String, library: String, fd: Int32 = 3) async -> Never {
        // If the host dies without closing the socket (it cannot, the kernel closes it), the
        // read below ends and we exit; PDEATHSIG is a second line of defence.
        _ = nova_set_parent_death_signal(SIGKILL, Int32(ProcessInfo.processInfo.environment["NOVA_RUNNER_PARENT"] ?? "") ?? 0)
        let channel = FrameChannel(fd: fd)
        guard let initFrame = channel.receive(), case .json(let initMsg)? = RunnerFrame.decode(initFrame), initMsg["op"]?.stringValue == "init" else { exit(2) }
        guard initMsg["protocol"]?.intValue == RunnerFrame.version else {
            channel.send(RunnerFrame.json(["op": "error", "message": .string("the runner speaks protocol \(RunnerFrame.version), the host \(initMsg["protocol"]?.intValue ?? 1): host and runner are different builds of nova-host")]))
            exit(3)
        }
        let instance: NativeDriverInstance
        do {
            let lib = try NativeDriverLibrary(path: library, expectedName: name)
            instance = try lib.makeInstance(config: initMsg["config"] ?? .object([:]))
        } catch {
            channel.send(RunnerFrame.json(["op": "error", "message": .string(error.description)]))
            exit(3)
        }
        DriverLogging.setSink { record in
            var o: [String: JSONValue] = ["op": "log", "level": .int(Int(record.level)), "channel": .string(record.channel),
                                          "message": .string(record.message)]
            if let call = HostCallId.current { o["call"] = .int(Int(call)) }
            if let run = record.runId { o["run"] = .string(run) }
            channel.send(RunnerFrame.json(.object(o)))
        }
        channel.send(RunnerFrame.json(["op": "ready", "protocol": .int(RunnerFrame.version), "manifest": instance.manifest.raw,
                                       "abi": .string(instance.library.abiVersion.description),
                                       "refreshes": .bool(instance.refreshesOnReload)]))
        // An instance whose tools change (ABI 1.1) sends each new list; the first one again in
        // case it changed between `ready` and here.
        instance.observeManifest { manifest in channel.send(RunnerFrame.json(["op": "tools", "manifest": manifest.raw])) }
        channel.send(RunnerFrame.json(["op": "tools", "manifest": instance.manifest.raw]))

        // Read frames on a dedicated thread: a blocking read must never occupy a thread of
        // Swift's cooperative pool.
        let calls = RunningCalls()
        let reader = Thread {
            serve(channel: channel, instance: instance, calls: calls)
            // The host closed the socket (orderly stop, or it died): `destroy` follows the
            // last completion, then `shutdown`, as in process.
            calls.cancelAll(instance)
            calls.waitUntilEmpty()
            // A call ends for us when the host gives up on it; the driver may still hold it.
            let idle = DispatchSemaphore(value: 0)
            instance.library.calls.whenIdle(instance: ObjectIdentifier(instance)) { idle.signal() }
            idle.wait()
            instance.destroy()
            instance.library.shutdown()
            exit(0)
        }
        reader.name = "nova-runner-reader"
        reader.start()
        while true { try? await Task.sleep(nanoseconds: 3_600_000_000_000) }
    }

    /// Serves call and cancel frames until the host closes the socket.
    ///
    /// A call is given to the driver right here, on the reader thread, and its result is sent
    /// by whichever thread completes it (this one, for a driver that completes inside `call`):
    /// the ABI lets `call` run on any host thread and forbids it to block for long, and not
    /// going through a task saves two thread hand-offs per call (reader → cooperative pool →
    /// the thread that sends). A driver that breaks that rule and blocks in `call` holds up the
    /// frames behind it, cancels included, as it would hold up a pool thread in process.
    ///
    /// Between frames the reader polls for `spinNanos` before it blocks (issue 15): the next
    /// call of a busy caller usually follows within a few µs, and a thread that slept must be
    /// woken first, which costs tens of µs on a busy host. An idle runner polls once for that
    /// long after its last frame, then sleeps in `read`.
    private static func serve(channel: FrameChannel, instance: NativeDriverInstance, calls: RunningCalls) {
        while let frame = channel.receive(spinningFor: spinNanos) {
            switch RunnerFrame.decode(frame) {
            case .call(let id, let deadline, let tool, let run, let input)?:
                let request = ToolCallRequest(tool: tool, input: input, deadlineNanos: deadline)
                calls.begin(id)
                let callId = HostCallId.$current.withValue(id) {
                    DriverCallContext.$runId.withValue(run) {
                        instance.start(request) { result in
                            let reply: [UInt8]
                            switch result {
                            case .success(let r): reply = RunnerFrame.ok(id: id, usage: r.usage, output: r.output.isEmpty ? Array("null".utf8) : r.output)
                            case .failure(let error):
                                reply = RunnerFrame.failed(id: id, (error as? ToolCallError) ?? ToolCallError(kind: .internal, message: "\(error)"))
                            }
                            calls.end(id)
                            channel.send(reply)
                        }
                    }
                }
                calls.started(id, callId: callId)
            case .cancel(let id)?:
                if let callId = calls.callId(of: id) { instance.cancel(callId: callId) }
            case .json(let msg)? where msg["op"]?.stringValue == "refresh":
                instance.refresh()
            default:
                continue
            }
        }
    }
}

extension DriverRunner {
    /// How long the runner's reader polls for the next frame before it blocks (see `serve`).
    static let spinNanos: Int64 = 100_000
}

/// The host's id of the call the runner is making (its frame id), for log records.
enum HostCallId {
    @TaskLocal static var current: UInt64?
}

/// The runner's calls in flight: the host's id → the driver call's id (for cancellation).
final class RunningCalls: Sendable {
    /// nil until `start` returned the driver call's id.
    private let calls = Mutex<[UInt64: UInt64?]>([:])
    /// Registers host call `id` before the driver sees it (it may complete inside `start`).
    func begin(_ id: UInt64) { calls.withLock { $0[id] = .some(nil) } }
    /// Records the driver call's id, unless the call has ended already.
    func started(_ id: UInt64, callId: UInt64) { calls.withLock { c in if c[id] != nil { c[id] = callId } } }
    /// The call has sent its result.
    func end(_ id: UInt64) { _ = calls.withLock { $0.removeValue(forKey: id) } }
    func callId(of id: UInt64) -> UInt64? { calls.withLock { $0[id] ?? nil } }
    func cancelAll(_ instance: NativeDriverInstance) {
        for case let callId? in calls.withLock({ Array($0.values) }) { instance.cancel(callId: callId) }
    }
    /// Blocks (on the runner's reader thread) until every call has sent its result.
    func waitUntilEmpty() {
        while !calls.withLock({ $0.isEmpty }) { usleep(2_000) }
    }
}
