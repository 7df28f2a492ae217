import ArgumentParser
import Dispatch
import Foundation
import Host
import JSON

/// `nova-host run PLAN`: validate a plan, run it under policy, print the result.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a plan (JSON or YAML), or a template (template:NAME[@VERSION] with --param).",
        discussion: """
            The plan is checked before anything runs: its shape, every step's driver and tool, \
            references and dependency cycles. Steps run as soon as their dependencies finish, \
            up to --parallel at once. Ctrl-C cancels the run; in-flight calls are cancelled.
            `nova-host run template:restock@1 --param sku=A1` renders a stored template (see \
            `nova-host templates`) with its params checked against its schema; the record keeps \
            the exact version and its hash.

            Exit codes: 0 succeeded · 1 failed or cancelled · 2 invalid plan or usage · 3 denied by policy.
            With --json, prints {"run_id", "status", "output", "episode", "error"}; "episode" is
            {"seq", "hash", "location"} (read it with `nova-host episodes show RUN_ID`).
            """)

    @Argument(help: ArgumentHelp("The plan file (.json, .yaml or .yml), or template:NAME[@VERSION].", valueName: "plan"))
    var plan: String

    @Option(name: .customLong("param"), help: ArgumentHelp("A template param as name=value (JSON when it parses as JSON, else a string); repeatable.", valueName: "name=value"))
    var params: [String] = []

    @Option(name: .customLong("input"), help: ArgumentHelp("A plan input as name=value; repeatable. Values are JSON when they parse as JSON and the input is not declared a string.", valueName: "name=value"))
    var inputs: [String] = []

    @Option(help: ArgumentHelp("Who runs the plan, as named in the policy (default: $NOVA_PRINCIPAL or 'local').", valueName: "name"))
    var principal: String?

    @Option(help: ArgumentHelp("How many independent steps may run at once (1 to 64).", valueName: "n"))
    var parallel: Int = RunPipeline.defaultParallelism

    @Flag(help: "Print a JSON result instead of a summary.")
    var json = false

    @Option(help: ArgumentHelp("Which driver log records to print on stderr: trace, debug, info, warning, error, or off.", valueName: "level"))
    var logLevel: String = "warning"

    @Flag(name: .shortAndLong, help: "Print driver log records from debug up (same as --log-level debug).")
    var verbose = false

    @OptionGroup var host: HostOptions

    func run() async throws {
        var opened: NovaHost?
        let plan: Plan
        var template: TemplateProvenance?
        if self.plan.hasPrefix(TemplateRef.callPrefix) {
            let host = try await self.host.makeHost(withData: true)
            opened = host
            do { (plan, template) = try await TemplateCommandSupport.render(self.plan, params: params, host: host) } catch {
                return fail(invalid: [error.message])
            }
        } else {
            guard params.isEmpty else { return fail(invalid: ["--param is for templates (run template:NAME@VERSION); a plan takes --input"]) }
            do { plan = try PlanLoader.load(path: self.plan) } catch {
                return fail(invalid: error.errors.map(\.description))
            }
        }
        var given: [String: JSONValue] = [:]
        for item in inputs {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                return fail(invalid: ["--input '\(item)' must be name=value"])
            }
            let name = String(item[..<eq]), raw = String(item[item.index(after: eq)...])
            let declared = plan.inputs.first { $0.name == name }
            if declared?.type == "string" { given[name] = .string(raw) } else { given[name] = (try? JSONValue.parse(raw)) ?? .string(raw) }
        }
        let levels = ["trace", "debug", "info", "warning", "error", "off"]
        guard let threshold = levels.firstIndex(of: verbose ? "debug" : logLevel) else {
            return fail(invalid: ["--log-level must be one of \(levels.joined(separator: ", "))"])
        }
        // Driver log records (host->log) on stderr, one line each, with where they came from.
        DriverLogging.setSink { r in
            guard Int(r.level) >= threshold else { return }
            var origin = "driver \(r.driver)"
            if let g = r.generation { origin += " gen \(g)" }
            if let c = r.callId { origin += " call \(c)" }
            if let run = r.runId { origin += " run \(run)" }
            Output.note("[\(origin)] \(r.levelName): \(r.message)")
        }
        let nova: NovaHost
        if let opened { nova = opened } else { nova = try await host.makeHost(withData: true) }
        let who = principal ?? ProcessInfo.processInfo.environment["NOVA_PRINCIPAL"] ?? "local"
        let pipeline = nova.pipeline
        let request: RunRequest
        do {
            var submission = RunSubmission(plan: plan, inputs: given, principal: who, parallelism: parallel, origin: "cli")
            submission.template = template
            request = try await pipeline.prepare(submission)
        } catch {
            if case .invalidOptions(let m) = error { return fail(invalid: ["--" + m.replacingOccurrences(of: "parallelism", with: "parallel")]) }
            return fail(invalid: error.errors.map(\.description))
        }
        let task = Task { await pipeline.execute(request) }
        // Ctrl-C cancels the run; the cancellation reaches in-flight calls through the ABI.
        // (A caught signal, not a dispatch source: see SignalPipe for why.)
        let interrupt = SignalPipe.subscribe(SIGINT) { task.cancel() }
        let result = await task.value
        interrupt.cancel()
        // Orderly exit: every driver instance is destroyed and every driver shut down.
        await nova.registry.shutdown()
        let (record, episode, episodeError) = (result.record, result.episode, result.episodeError)

        if json {
            var out: [String: JSONValue] = ["run_id": .string(record.runId), "status": .string(record.status.rawValue),
                                            "output": record.output ?? .null, "episode": episode.map { ["seq": .int($0.seq), "hash": .string($0.hash), "location": .string($0.path)] } ?? .null]
            if let e = record.error { out["error"] = .string(e) }
            if let e = episodeError { out["episode_error"] = .string(e) }
            Output.json(.object(out))
        } else {
            Summary.print(record)
            if let episode { Output.note("episode: \(episode.path) (seq \(episode.seq))") }
        }
        if let episodeError {
            Output.error(episodeError)
            // A run whose record was lost is not a success: the contract is "every run becomes an episode".
            if episode == nil { throw ExitCode(ExitStatus.runFailed) }
        }
        switch record.status {
        case .succeeded: return
        case .denied: throw ExitCode(ExitStatus.denied)
        default: throw ExitCode(ExitStatus.runFailed)
        }
    }

    private func fail(invalid messages: [String]) {
        if json {
            Output.json(["run_id": .null, "status": "invalid", "output": .null, "episode": .null,
                         "error": .string(messages.joined(separator: "\n"))])
        } else {
            for m in messages { Output.error(m) }
        }
        Foundation.exit(ExitStatus.invalid)
    }
}

/// The human summary of a run: one line per step on stderr, the output on stdout.
enum Summary {
    static func print(_ r: RunRecord) {
        Output.note("run \(r.runId) \(r.status.rawValue) in \(format(r.durationMs)) (\(r.steps.count) steps)")
        let width = r.steps.map(\.id.count).max() ?? 0
        for s in r.steps {
            let mark: String
            switch s.status {
            case .succeeded: mark = "ok  "
            case .skipped: mark = "skip"
            case .denied: mark = "DENY"
            case .cancelled: mark = "stop"
            default: mark = "FAIL"
            }
            let ms = s.attempts.reduce(0) { $0 + $1.durationMs }
            var line = "  \(mark) \(s.id.padding(toLength: width, withPad: " ", startingAt: 0))  \(s.call)  \(format(ms))"
            if s.attempts.count > 1 { line += "  (\(s.attempts.count) attempts)" }
            if let reason = s.reason, s.status != .succeeded { line += "  — \(reason)" }
            Output.note(line)
        }
        if let e = r.error { Output.note("error: \(e)") }
        if let out = r.output { Swift.print(out.serialized(pretty: true, sortedKeys: true)) }
    }

    static func format(_ ms: Double) -> String {
        ms < 1 ? "\(Int(ms * 1000)) µs" : ms < 1000 ? "\((ms * 10).rounded() / 10) ms" : "\((ms / 100).rounded() / 10) s"
    }
}
