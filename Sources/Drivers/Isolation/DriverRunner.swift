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
        guard let initFrame = channel.receive(), let initMsg = try? JSONValue.parse(initFrame), initMsg["op"]?.stringValue == "init" else { exit(2) }
        let instance: NativeDriverInstance
        do {
            let lib = try NativeDriverLibrary(path: library, expectedName: name)
            instance = try lib.makeInstance(config: initMsg["config"] ?? .object([:]))
        } catch {
            channel.send(JSONValue.object(["op": "error", "message": .string(error.description)]).serializedBytes())
            exit(3)
        }
        DriverLogging.setSink { record in
            var o: [String: JSONValue] = ["op": "log", "level": .int(Int(record.level)), "channel": .string(record.channel),
                                          "message": .string(record.message)]
            if let call = HostCallId.current { o["call"] = .int(Int(call)) }
            if let run = record.runId { o["run"] = .string(run) }
            channel.send(JSONValue.object(o).serializedBytes())
        }
        channel.send(JSONValue.object(["op": "ready", "manifest": instance.manifest.raw, "abi": .string(instance.library.abiVersion.description)]).serializedBytes())

        // Read frames on a dedicated thread: a blocking read must never occupy a thread of
        // Swift's cooperative pool, which runs the calls themselves.
        let tasks = RunningCalls()
        let reader = Thread {
            serve(channel: channel, instance: instance, tasks: tasks)
            // The host closed the socket (orderly stop, or it died): `destroy` follows the
            // last completion, then `shutdown`, as in process.
            tasks.cancelAll()
            tasks.waitUntilEmpty()
            // A task ends when the host gives up on its call; the driver may still hold it.
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

    private static func serve(channel: FrameChannel, instance: NativeDriverInstance, tasks: RunningCalls) {
        while let frame = channel.receive() {
            guard let msg = try? JSONValue.parse(frame), let id = msg["id"]?.intValue else { continue }
            switch msg["op"]?.stringValue {
            case "call":
                let deadline = msg["deadline_ns"]?.intValue ?? 0
                let request = ToolCallRequest(tool: msg["tool"]?.stringValue ?? "", input: (msg["input"] ?? .object([:])).serializedBytes(),
                                              deadlineNanos: deadline == 0 ? nil : Int64(deadline))
                let run = msg["run"]?.stringValue
                tasks.start(id) {
                    var reply: [UInt8]
                    do {
                        let r = try await HostCallId.$current.withValue(UInt64(id)) {
                            try await DriverCallContext.$runId.withValue(run) { try await instance.call(request) }
                        }
                        reply = Array(#"{"op":"result","id":\#(id),"ok":true,"usage":{"tokens":\#(r.usage.tokens),"cost_micros":\#(r.usage.costMicros)},"output":"#.utf8)
                        reply += r.output.isEmpty ? Array("null".utf8) : r.output
                        reply.append(UInt8(ascii: "}"))
                    } catch {
                        let e = (error as? ToolCallError) ?? ToolCallError(kind: .internal, message: "\(error)")
                        reply = JSONValue.object([
                            "op": "result", "id": .int(id), "ok": false,
                            "usage": ["tokens": .int(Int(e.usage.tokens)), "cost_micros": .int(Int(e.usage.costMicros))],
                            "error": ["kind": .string(e.kind.rawValue), "code": .string(e.code), "message": .string(e.message), "source": .string(e.source)],
                        ]).serializedBytes()
                    }
                    tasks.remove(id)
                    channel.send(reply)
                }
            case "cancel":
                tasks.cancel(id)
            default:
                continue
            }
        }
    }
}

/// The runner's calls in flight, by id, for cancellation.
/// The host's id of the call the runner is making (its frame id), for log records.
enum HostCallId {
    @TaskLocal static var current: UInt64?
}

final class RunningCalls: Sendable {
    private let tasks = Mutex<[Int: Task<Void, Never>]>([:])
    /// Starts `body` as the task of call `id`. It is registered under the lock, so a body that
    /// finishes at once (its `remove` waits for the lock) cannot leave a finished task behind.
    func start(_ id: Int, _ body: @escaping @Sendable () async -> Void) {
        tasks.withLock { $0[id] = Task { await body() } }
    }
    func remove(_ id: Int) { _ = tasks.withLock { $0.removeValue(forKey: id) } }
    func cancel(_ id: Int) { tasks.withLock { $0[id] }?.cancel() }
    func cancelAll() { for t in tasks.withLock({ Array($0.values) }) { t.cancel() } }
    /// Blocks (on the runner's reader thread) until every call has sent its result.
    func waitUntilEmpty() {
        while !tasks.withLock({ $0.isEmpty }) { usleep(2_000) }
    }
}
