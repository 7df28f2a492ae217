import ArgumentParser
import Foundation
import Host
import HostServer
import JSON

/// `nova-host orchestrate FILE`: several agents' goals in ordered phases.
struct OrchestrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestrate",
        abstract: "Run several agents' goals in ordered phases and write a Markdown status report.",
        discussion: """
            FILE (JSON or YAML) names phases, each a list of goals: {agent, goal, plan | template + params, \
            inputs}. Each phase starts when every goal of the one before has completed; a goal that fails \
            stops the orchestration. Inside a phase goals run one after another, or all at once with \
            --parallel. Goals are queued jobs run by a worker in this process (and by any worker sharing \
            the store; --no-worker leaves them to those). Running the same orchestration (same name) again \
            resumes it: goals already submitted are found by their idempotency keys, not submitted twice.

            At the end the report is written to REPORTS/<name>-<time>.md (default reports/). \
            --checklist prints where each goal stands (- [x] done, - [ ] outstanding, - [!] ended without \
            completing) and submits nothing.

            Exit codes: 0 every goal completed · 1 a goal did not complete · 2 invalid file or usage.
            """)

    @Argument(help: ArgumentHelp("The orchestration (.json, .yaml or .yml).", valueName: "file")) var file: String
    @Flag(help: "Run the goals of a phase at once instead of one after another.") var parallel = false
    @Flag(help: "Print the checklist of the orchestration's goals and submit nothing.") var checklist = false
    @Flag(name: .customLong("no-worker"), help: "Do not run goals in this process (other workers sharing the store run them).") var noWorker = false
    @Option(help: ArgumentHelp("Where the Markdown report goes (default: reports).", valueName: "dir")) var reports = "reports"
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var host: HostOptions

    func run() async throws {
        let orchestration: Orchestration
        do { orchestration = try Orchestration(json: try PlanLoader.document(path: file)) } catch {
            for e in error.errors { Output.error(e.description) }
            throw ExitCode(ExitStatus.invalid)
        }
        let nova = try await host.makeHost(withData: true)
        guard let store = nova.episodes?.store, let agents = store.agentStore, let queue = store.jobQueue else {
            Output.error("the store has no agents"); throw ExitCode(ExitStatus.runFailed)
        }
        _ = await nova.syncTemplates()
        let service = HostOptions.builtIns(nova) ?? AgentService(store: agents, queue: queue, host: nova)
        let orchestrator = Orchestrator(service: service)
        if checklist {
            let goals = await orchestrator.status(orchestration)
            if json { Output.json(Self.json(goals)) } else { print(Orchestrator.checklist(goals)) }
            if !goals.allSatisfy(\.done) { throw ExitCode(ExitStatus.runFailed) }
            return
        }
        let worker = noWorker ? nil : JobWorker(queue: queue, handlers: [RunJob.kind: RunJobHandler(runs: RunManager(host: nova), agents: agents)],
                                                options: JobWorkerOptions(name: "orchestrate-\(getpid())"))
        let workerTask = worker.map { w in Task { await w.run() } }
        let startedAt = Timestamps.now()
        let quiet = json
        let goals = await orchestrator.run(orchestration, parallel: parallel) { state in
            guard !quiet else { return }
            let done = state.filter(\.done).count
            Output.note("[\(done)/\(state.count)] " + (state.first { !$0.ended && $0.status != "not started" }.map { "\($0.phase) · \($0.agent): \($0.status)" } ?? ""))
        }
        worker?.stop()
        await workerTask?.value
        await nova.registry.shutdown()
        let report = Orchestrator.report(orchestration, goals, startedAt: startedAt, finishedAt: Timestamps.now())
        let stamp = startedAt.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "").prefix(15)
        let path = "\(reports)/\(orchestration.name)-\(stamp).md"
        do {
            try FileManager.default.createDirectory(atPath: reports, withIntermediateDirectories: true)
            try report.write(toFile: path, atomically: true, encoding: .utf8)
        } catch { Output.error("cannot write the report \(path): \(error)") }
        if json {
            var out = Self.json(goals).objectValue ?? [:]
            out["report"] = .string(path)
            Output.json(.object(out))
        } else {
            print(Orchestrator.checklist(goals))
            Output.note("report: \(path)")
        }
        if !goals.allSatisfy(\.done) { throw ExitCode(ExitStatus.runFailed) }
    }

    static func json(_ goals: [OrchestratedGoal]) -> JSONValue {
        ["goals": .array(goals.map { g in
            ["phase": .string(g.phase), "agent": .string(g.agent), "goal": .string(g.goal), "status": .string(g.status),
             "goal_id": g.goalId.map(JSONValue.string) ?? .null, "error": g.error.map(JSONValue.string) ?? .null]
        }), "completed": .bool(goals.allSatisfy(\.done))]
    }
}
