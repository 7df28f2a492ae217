import CHostSupport
import Drivers
import JSON
import Schema
import Synchronization

/// One finding of `nova-host drivers test`.
public struct ConformanceFinding: Sendable, Equatable {
    /// `passed` and `info` need nothing; `warning` is worth fixing; `failed` breaks the ABI or
    /// the driver's own declarations.
    public enum Outcome: String, Sendable {
        case passed, info, warning, failed
    }

    /// The check: `load`, `manifest`, `create`, `tools` (an instance's own list, ABI 1.1), `example`, `async`, `concurrency`, `deadline`,
    /// `cancel`, `destroy`.
    public var check: String
    public var outcome: Outcome
    /// What was seen.
    public var detail: String
    /// What to change (failures and warnings).
    public var hint: String?

    public init(check: String, outcome: Outcome, detail: String, hint: String? = nil) {
        (self.check, self.outcome, self.detail, self.hint) = (check, outcome, detail, hint)
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["check": .string(check), "outcome": .string(outcome.rawValue), "detail": .string(detail)]
        if let hint { o["hint"] = .string(hint) }
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard let check = json["check"]?.stringValue, let outcome = json["outcome"]?.stringValue.flatMap(Outcome.init(rawValue:)),
              let detail = json["detail"]?.stringValue else { return nil }
        self.init(check: check, outcome: outcome, detail: detail, hint: json["hint"]?.stringValue)
    }
}

/// Checks one driver library against the ABI as the host uses it: negotiation and manifest,
/// every declared example (input against inputSchema, output against outputSchema, or the
/// declared error code), how calls complete (inside `call` or later from another thread,
/// exactly once), deadline and cancel (the driver must still complete the call), and `destroy`
/// and `shutdown` after the last completion.
///
/// It loads the driver in this process: run it in a child (`nova-host drivers test` does), so a
/// driver that crashes or hangs is reported instead of taking the caller down.
public struct ConformanceSuite: Sendable {
    public var path: String
    /// The instance configuration passed to `create`.
    public var config: JSONValue
    /// How long a call may take before the driver is reported as not answering.
    public var callTimeoutNanos: Int64

    public init(path: String, config: JSONValue = .object([:]), callTimeoutNanos: Int64 = 10_000_000_000) {
        (self.path, self.config, self.callTimeoutNanos) = (path, config, callTimeoutNanos)
    }

    /// Runs every check; `starting` names each check before it runs (a crash or hang is then
    /// attributed to it), `found` receives each finding as it is made.
    public func run(starting: @Sendable (String) -> Void, found: @Sendable (ConformanceFinding) -> Void) async {
        starting("load")
        let name = DriverDiscovery.driverName(forFile: path)
        let library: NativeDriverLibrary
        do {
            library = try NativeDriverLibrary(path: path, expectedName: name)
        } catch {
            found(.init(check: "load", outcome: .failed, detail: "\(error)", hint: Self.loadHint(error)))
            return
        }
        let m = library.manifest
        found(.init(check: "load", outcome: .passed,
                    detail: "negotiated ABI \(library.abiVersion); manifest '\(m.name)' \(m.version), \(m.tools.count) tool(s), concurrency \(m.concurrency.rawValue)"))

        starting("manifest")
        let examples = checkManifest(m, found: found)

        starting("create")
        let instance: NativeDriverInstance
        do {
            instance = try library.makeInstance(config: config)
        } catch {
            found(.init(check: "create", outcome: .failed, detail: "\(error)",
                        hint: "pass the instance configuration the driver needs with --config '{…}' (or --config-file)"))
            library.shutdown()
            return
        }
        found(.init(check: "create", outcome: .passed, detail: "instance created with config \(config.serialized())"))
        if library.implementsDescribeInstance {
            // ABI 1.1: the instance lists its own tools; makeInstance adopted the list only if
            // it checked out like a manifest (a refused list is logged, the manifest's stays).
            starting("tools")
            let own = instance.manifest.tools.map(\.name)
            if let problem = instance.instanceToolsProblem {
                found(.init(check: "tools", outcome: .failed, detail: "describe_instance's list was refused: \(problem)",
                            hint: "return {\"tools\": [...]} checked like a manifest's tools (schemas/manifest.schema.json)"))
            } else {
                found(.init(check: "tools", outcome: .passed,
                            detail: "describe_instance lists \(own.count) tool(s): \(own.prefix(12).joined(separator: ", "))\(own.count > 12 ? ", …" : "")"))
            }
        }

        for (tool, index, example, schemas) in examples {
            starting("example \(m.name).\(tool.name)[\(index)]")
            found(await runExample(instance, tool: tool, index: index, example: example, schemas: schemas))
        }
        let succeeding = examples.filter { $0.example.error == nil }
        if let sample = succeeding.first, m.concurrency == .threadSafe {
            starting("concurrency")
            found(await checkConcurrency(instance, tool: sample.tool.name, input: sample.example.input))
        }
        starting("async")
        found(completionFinding(library.counters, examples: examples.count))
        if examples.isEmpty {
            found(.init(check: "deadline", outcome: .warning, detail: "not checked: no tool declares an example",
                        hint: "declare \"examples\" so deadline and cancel behaviour can be checked"))
        } else {
            starting("deadline")
            found(await checkEnding(instance, examples, check: "deadline"))
            starting("cancel")
            found(await checkEnding(instance, examples, check: "cancel"))
        }
        starting("destroy")
        found(await checkDestroy(instance, library: library))
        let violations = library.counters
        if violations.strayCompletions > 0 || violations.okBeforeComplete > 0 {
            found(Self.violationFinding(violations))
        }
    }

    // MARK: Checks

    typealias Example = (tool: ToolDescriptor, index: Int, example: ToolExample, schemas: (input: CompiledSchema, output: CompiledSchema?))

    /// Compiles each tool's schemas and checks every example input; returns the examples to call.
    func checkManifest(_ m: DriverManifest, found: (ConformanceFinding) -> Void) -> [Example] {
        var examples: [Example] = []
        var withoutExamples: [String] = []
        for tool in m.tools {
            // The loader already refused schemas that do not compile.
            guard let input = try? Schema.compile(tool.inputSchema) else { continue }
            let output = tool.outputSchema.flatMap { try? Schema.compile($0) }
            if tool.examples.isEmpty { withoutExamples.append(tool.name) }
            for (i, example) in tool.examples.enumerated() {
                let problems = input.validate(example.input).errors
                if problems.isEmpty {
                    examples.append((tool, i, example, (input, output)))
                } else {
                    found(.init(check: "manifest", outcome: .failed,
                                detail: "\(m.name).\(tool.name) examples[\(i)].input does not pass the tool's inputSchema: \(Self.describe(problems))",
                                hint: "fix the example or the inputSchema; the host validates every call's input against inputSchema"))
                }
            }
        }
        found(.init(check: "manifest", outcome: .passed,
                    detail: "valid (schemas/manifest.schema.json); every inputSchema and outputSchema compiles; \(examples.count) example(s)"))
        if !withoutExamples.isEmpty {
            found(.init(check: "manifest", outcome: .warning,
                        detail: "no examples for: \(withoutExamples.map { "\(m.name).\($0)" }.joined(separator: ", "))",
                        hint: "add \"examples\": [{\"input\": {…}}] (or {\"input\": …, \"error\": \"code\"}) to each tool so it can be called here"))
        }
        return examples
    }

    func runExample(_ instance: NativeDriverInstance, tool: ToolDescriptor, index: Int, example: ToolExample,
                    schemas: (input: CompiledSchema, output: CompiledSchema?)) async -> ConformanceFinding {
        let label = "\(instance.manifest.name).\(tool.name) examples[\(index)]"
        let request = ToolCallRequest(tool: tool.name, input: example.input.serializedBytes(), deadlineNanos: nova_monotonic_ns() + callTimeoutNanos)
        do {
            let result = try await instance.call(request)
            if let code = example.error {
                return .init(check: "example", outcome: .failed, detail: "\(label): succeeded, but the example expects error '\(code)'",
                             hint: "fail with {\"code\": \"\(code)\", …} or correct the example's \"error\"")
            }
            let output: JSONValue
            do { output = try JSONValue.parse(result.output) } catch {
                return .init(check: "example", outcome: .failed, detail: "\(label): the output is not JSON: \(error)",
                             hint: "complete with one UTF-8 JSON value as the output")
            }
            if let outputSchema = schemas.output {
                let problems = outputSchema.validate(output).errors
                if !problems.isEmpty {
                    return .init(check: "example", outcome: .failed, detail: "\(label): the output does not pass outputSchema: \(Self.describe(problems))",
                                 hint: "the host refuses such a result (error code output_schema): fix the output or the outputSchema")
                }
            }
            return .init(check: "example", outcome: .passed, detail: "\(label): succeeded\(schemas.output == nil ? "" : ", output passes outputSchema")")
        } catch let error as ToolCallError {
            if let code = example.error {
                if error.code == code { return .init(check: "example", outcome: .passed, detail: "\(label): failed with '\(code)' as declared") }
                return .init(check: "example", outcome: .failed, detail: "\(label): failed with '\(error.code)' (\(error.message)), the example expects '\(code)'",
                             hint: "complete with status < 0 and {\"code\": \"\(code)\", \"message\": …}")
            }
            if error.kind == .deadline {
                return .init(check: "example", outcome: .failed, detail: "\(label): no answer within \(callTimeoutNanos / 1_000_000_000) s",
                             hint: "every call must be completed exactly once; return NOVA_PENDING and complete from another thread for slow work")
            }
            return .init(check: "example", outcome: .failed, detail: "\(label): failed: \(error.code): \(error.message)",
                         hint: "declare the expected failure with \"error\": \"\(error.code)\", or fix the driver (or pass --config)")
        } catch {
            return .init(check: "example", outcome: .failed, detail: "\(label): \(error)")
        }
    }

    /// Sixteen calls at once on a driver that declares itself thread-safe: all must complete.
    func checkConcurrency(_ instance: NativeDriverInstance, tool: String, input: JSONValue) async -> ConformanceFinding {
        let n = 16
        let bytes = input.serializedBytes()
        let deadline = nova_monotonic_ns() + callTimeoutNanos
        let answered = await withTaskGroup(of: Bool.self) { group -> Int in
            for _ in 0..<n {
                group.addTask {
                    do { _ = try await instance.call(ToolCallRequest(tool: tool, input: bytes, deadlineNanos: deadline)); return true } catch let e as ToolCallError {
                        return e.kind != .deadline
                    } catch { return false }
                }
            }
            var count = 0
            for await ok in group where ok { count += 1 }
            return count
        }
        if answered == n { return .init(check: "concurrency", outcome: .passed, detail: "\(n) concurrent calls of \(tool) all answered (thread_safe)") }
        return .init(check: "concurrency", outcome: .failed, detail: "\(n - answered) of \(n) concurrent calls of \(tool) got no answer",
                     hint: "a driver that declares \"concurrency\": \"thread_safe\" must accept calls from several threads at once (otherwise declare \"serialized\") and complete each exactly once")
    }

    func completionFinding(_ c: CallCounters, examples: Int) -> ConformanceFinding {
        if examples == 0 { return .init(check: "async", outcome: .info, detail: "no calls made (no examples)") }
        let summary = "call returned NOVA_OK \(c.returnedOk)×, NOVA_PENDING \(c.returnedPending)×, refused \(c.refused)×; completed inside call \(c.completedOnCallingThread)×, from another thread \(c.completedOnOtherThread)×"
        if c.returnedPending > 0 { return .init(check: "async", outcome: .passed, detail: "answers asynchronously: \(summary)") }
        return .init(check: "async", outcome: .info, detail: "completes every call inside `call`: \(summary)",
                     hint: "fine for quick tools; a tool that does I/O or sleeps should return NOVA_PENDING and complete from its own thread")
    }

    /// Every example once more, ended early: with a 1 ms deadline (`deadline`) or
    /// cancelled as soon as the driver holds it (`cancel`). However each call ends, the driver must still
    /// complete it, so that its generation can be destroyed.
    func checkEnding(_ instance: NativeDriverInstance, _ examples: [Example], check: String) async -> ConformanceFinding {
        var endings: [String: Int] = [:]
        for e in examples {
            let budget = check == "deadline" ? 1_000_000 : callTimeoutNanos
            let request = ToolCallRequest(tool: e.tool.name, input: e.example.input.serializedBytes(), deadlineNanos: nova_monotonic_ns() + budget)
            let done = Atomic<Bool>(false)
            let task = Task {
                defer { done.store(true, ordering: .releasing) }
                return try await instance.call(request)
            }
            if check == "cancel" {
                // Cancel once the driver holds the call (a cancel before that never reaches it).
                let until = nova_monotonic_ns() + 1_000_000_000
                while instance.held == 0, !done.load(ordering: .acquiring), nova_monotonic_ns() < until { await Task.yield() }
                task.cancel()
            }
            switch await task.result {
            case .success: endings["succeeded first", default: 0] += 1
            case .failure(let error as ToolCallError): endings[error.kind.rawValue, default: 0] += 1
            case .failure(let error): endings["\(error)", default: 0] += 1
            }
            guard await waitUntilIdle(instance) else {
                let how = check == "deadline" ? "after its 1 ms deadline passed" : "after it was cancelled"
                return .init(check: check, outcome: .failed,
                             detail: "\(instance.manifest.name).\(e.tool.name) examples[\(e.index)]: the driver still holds the call \(callTimeoutNanos / 1_000_000_000) s \(how)",
                             hint: check == "deadline"
                                 ? "complete every call exactly once: when deadline_ns passes (is_cancelled returns 1), complete with NOVA_ERR_DEADLINE"
                                 : "a cancelled call must still be completed exactly once (normally with NOVA_ERR_CANCELLED)")
            }
        }
        let seen = endings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)×" }.joined(separator: ", ")
        let what = check == "deadline" ? "with a 1 ms deadline" : "cancelled while the driver held them (\(instance.library.implementsCancel ? "cancel implemented" : "no cancel function: the driver polls is_cancelled"))"
        return .init(check: check, outcome: .passed, detail: "\(examples.count) call(s) \(what) ended \(seen); the driver completed every one")
    }

    /// `destroy` once the instance holds no call, then `shutdown`; both must return.
    func checkDestroy(_ instance: NativeDriverInstance, library: NativeDriverLibrary) async -> ConformanceFinding {
        guard await waitUntilIdle(instance) else {
            return .init(check: "destroy", outcome: .failed, detail: "not destroyed: the driver still holds \(instance.held) call(s)",
                         hint: "the host destroys an instance only after its last completion; complete every call")
        }
        let before = library.counters.strayCompletions
        instance.destroy()
        library.shutdown()
        // A completion that arrives after destroy is one for a call already completed.
        try? await Task.sleep(nanoseconds: 100_000_000)
        if library.counters.strayCompletions > before {
            return .init(check: "destroy", outcome: .failed, detail: "complete was called after destroy",
                         hint: "destroy must stop the instance's threads: no complete after the last call was completed")
        }
        return .init(check: "destroy", outcome: .passed, detail: "destroy and shutdown returned after the last completion")
    }

    static func violationFinding(_ c: CallCounters) -> ConformanceFinding {
        var problems: [String] = []
        if c.okBeforeComplete > 0 { problems.append("call returned NOVA_OK without having called complete \(c.okBeforeComplete)×") }
        if c.strayCompletions > 0 { problems.append("complete was called for a call already completed (or an unknown id) \(c.strayCompletions)×") }
        return .init(check: "async", outcome: .failed, detail: problems.joined(separator: "; "),
                     hint: "complete exactly once per call: before returning NOVA_OK, or later after NOVA_PENDING; never after a negative return")
    }

    // MARK: Helpers

    /// Waits (polling every 5 ms) until the instance holds no call, at most `callTimeoutNanos`.
    func waitUntilIdle(_ instance: NativeDriverInstance) async -> Bool {
        let until = nova_monotonic_ns() + callTimeoutNanos
        while instance.held > 0 {
            if nova_monotonic_ns() > until { return false }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return true
    }

    static func describe(_ problems: [ValidationError]) -> String {
        problems.prefix(3).map { "\($0.instanceLocation.isEmpty ? "/" : $0.instanceLocation): \($0.message)" }.joined(separator: "; ")
    }

    static func loadHint(_ error: any Error) -> String? {
        guard let e = error as? DriverLoadError else { return nil }
        switch e {
        case .nameMismatch: return "name the file libnova_<name>.so after the manifest's \"name\""
        case .missingEntrySymbol: return "export nova_driver_init (NOVA_EXPORT) from the library"
        case .majorMismatch, .minorTooNew: return "build against this host's nova_driver.h (pkg-config --cflags nova-driver)"
        case .invalidManifest: return "see schemas/manifest.schema.json and the MANIFEST section of nova_driver.h"
        default: return nil
        }
    }
}
