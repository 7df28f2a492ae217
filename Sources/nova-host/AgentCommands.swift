import ArgumentParser
import Foundation
import Host
import JSON

/// Opens the agent service over the host's store (the same data directory or `--store` a
/// `serve` or `worker` uses: goals submitted here are run by them).
struct AgentServiceOptions: ParsableArguments {
    @OptionGroup var host: HostOptions
    @Flag(help: "Print JSON.") var json = false

    func open() async throws -> AgentService {
        let nova = try await host.makeHost(withData: true)
        guard let store = nova.episodes?.store, let agents = store.agentStore, let queue = store.jobQueue else {
            Output.error("the store has no agents")
            throw ExitCode(ExitStatus.runFailed)
        }
        return HostOptions.builtIns(nova) ?? AgentService(store: agents, queue: queue, host: nova)
    }
}

/// Runs an agent operation: the caller's mistakes exit 2 with the message, store failures 1.
func agentCall<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let e as AgentError {
        Output.error(e.description)
        switch e {
        case .notFound: throw ExitCode(ExitStatus.runFailed)
        default: throw ExitCode(ExitStatus.invalid)
        }
    } catch let e as ExitCode { throw e } catch {
        Output.error("the store failed: \(error)")
        throw ExitCode(ExitStatus.runFailed)
    }
}

/// Parses a JSON argument (or `@file`), exiting 2 when it is not JSON.
func jsonArgument(_ text: String, _ name: String) throws -> JSONValue {
    var source = text
    if text.hasPrefix("@") {
        guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
            Output.error("\(name): cannot read \(text.dropFirst())")
            throw ExitCode(ExitStatus.invalid)
        }
        source = String(decoding: data, as: UTF8.self)
    }
    do { return try JSONValue.parse(source) } catch {
        Output.error("\(name) is not JSON: \(error)")
        throw ExitCode(ExitStatus.invalid)
    }
}

/// `nova-host agents …`: long-lived agents.
struct AgentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agents",
        abstract: "Create and manage agents: named identities under the policy that take goals.",
        discussion: """
            An agent acts as its principal (and role): every call of its goals' runs is decided by the policy \
            for it, and limited to its tools when it lists them. Lifecycle: active ⇄ paused, → stopped \
            (running goals cancelled), resume, delete (a tombstone: episodes and memory stay). Every change \
            is a new version (--if-version refuses a change based on an old one). AGENT is an id or a name \
            (namespace/name outside 'default'). See docs/agents.md.

            Exit codes: 0 done · 1 not found or the store failed · 2 invalid input, a stale version or a refused transition.
            """,
        subcommands: [Create.self, List.self, Show.self, Update.self, Pause.self, Resume.self, Stop.self, Delete.self, Versions.self])

    static func printAgent(_ a: Agent, json: Bool) {
        if json { Output.json(a.json); return }
        print("\(a.namespace)/\(a.name)  \(a.status.rawValue)  v\(a.version)  id \(a.id)")
        print("  principal: \(a.principal)\(a.role.map { " (role \($0))" } ?? "")   tools: \(a.tools?.joined(separator: ", ") ?? "any the policy allows")")
        if !a.description.isEmpty { print("  \(a.description)") }
        if !a.labels.isEmpty { print("  labels: " + a.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
        print("  created \(a.createdAt), updated \(a.updatedAt)\(a.plan == nil ? "" : ", has a default plan")")
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an agent.")
        @Argument(help: "Its name (unique among live agents of the namespace).") var name: String
        @Option(help: "The principal it acts as.") var principal: String
        @Option(help: "The role (default: the policy's mapping of the principal).") var role: String?
        @Option(help: "Its namespace.") var namespace: String?
        @Option(help: "A description.") var description: String?
        @Option(help: "The only tools its runs may call, comma-separated (default: any the policy allows).") var tools: String?
        @Option(help: "Its default plan (a JSON plan, or @file).") var plan: String?
        @Option(help: "Its configuration (a JSON object, or @file).") var config: String?
        @Option(help: "A label key=value (repeatable).") var label: [String] = []
        @OptionGroup var options: AgentServiceOptions

        func run() async throws {
            var o: [String: JSONValue] = ["name": .string(name), "principal": .string(principal)]
            if let role { o["role"] = .string(role) }
            if let namespace { o["namespace"] = .string(namespace) }
            if let description { o["description"] = .string(description) }
            if let tools { o["tools"] = .array(tools.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) }) }
            if let plan { o["plan"] = try jsonArgument(plan, "--plan") }
            if let config { o["config"] = try jsonArgument(config, "--config") }
            if !label.isEmpty { o["labels"] = try AgentsCommand.labels(label) }
            let service = try await options.open()
            let agent = try await agentCall { try await service.create(.object(o)) }
            AgentsCommand.printAgent(agent, json: options.json)
        }
    }

    static func labels(_ pairs: [String]) throws -> JSONValue {
        var out: [String: JSONValue] = [:]
        for p in pairs {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { Output.error("--label must be key=value, not '\(p)'"); throw ExitCode(ExitStatus.invalid) }
            out[kv[0]] = .string(kv[1])
        }
        return .object(out)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List agents (deleted ones only with --status deleted).")
        @Option(help: "Only this status (active, paused, stopped, deleted).") var status: String?
        @Option(help: "Only agents with this label, key=value.") var label: String?
        @Option(help: "Only this namespace.") var namespace: String?
        @Option(help: "How many to show.") var limit = 50
        @Option(help: "How many to skip.") var offset = 0
        @OptionGroup var options: AgentServiceOptions

        func run() async throws {
            var filter = AgentFilter(namespace: namespace, limit: limit, offset: offset)
            if let status {
                guard let s = AgentStatus(rawValue: status) else { Output.error("--status must be active, paused, stopped or deleted"); throw ExitCode(ExitStatus.invalid) }
                filter.status = s
            }
            if let label {
                let kv = label.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { Output.error("--label must be key=value"); throw ExitCode(ExitStatus.invalid) }
                filter.label = (kv[0], kv[1])
            }
            let service = try await options.open()
            let (agents, total) = try await agentCall { try await service.list(filter) }
            if options.json { Output.json(["items": .array(agents.map(\.json)), "total": .int(total)]); return }
            if agents.isEmpty { Output.note("no agents"); return }
            func col(_ s: String, _ w: Int) -> String { s.padding(toLength: w, withPad: " ", startingAt: 0) }
            print(col("NAMESPACE/NAME", 30) + col("STATUS", 9) + col("VERSION", 9) + col("PRINCIPAL", 14) + "ID")
            for a in agents { print(col("\(a.namespace)/\(a.name)", 30) + col(a.status.rawValue, 9) + col("v\(a.version)", 9) + col(a.principal, 14) + a.id) }
            if total > offset + agents.count { Output.note("\(total - offset - agents.count) more (use --offset \(offset + agents.count))") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one agent.")
        @Argument(help: "The agent (id or name).") var agent: String
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let service = try await options.open()
            AgentsCommand.printAgent(try await agentCall { try await service.agent(agent) }, json: options.json)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change an agent's definition (one new version).")
        @Argument(help: "The agent (id or name).") var agent: String
        @Option(help: "Fields to change, as a JSON object (name, description, principal, role, tools, plan, config, labels), or @file.") var set: String
        @Option(help: "Refuse the change unless the agent is at this version.") var ifVersion: Int?
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let patch = try jsonArgument(set, "--set")
            let service = try await options.open()
            AgentsCommand.printAgent(try await agentCall { try await service.update(agent, patch: patch, ifVersion: ifVersion) }, json: options.json)
        }
    }

    /// pause, resume, stop and delete share their shape.
    struct Action<Kind: AgentActionKind>: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(commandName: Kind.action.rawValue, abstract: Kind.abstract)
        }
        @Argument(help: "The agent (id or name).") var agent: String
        @Option(help: "Refuse unless the agent is at this version.") var ifVersion: Int?
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let service = try await options.open()
            AgentsCommand.printAgent(try await agentCall { try await service.act(agent, Kind.action, ifVersion: ifVersion) }, json: options.json)
        }
    }
    typealias Pause = Action<PauseKind>
    typealias Resume = Action<ResumeKind>
    typealias Stop = Action<StopKind>
    typealias Delete = Action<DeleteKind>

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every version of an agent's definition.")
        @Argument(help: "The agent (id or name).") var agent: String
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let service = try await options.open()
            let versions = try await agentCall { try await service.versions(agent) }
            if options.json { Output.json(["items": .array(versions.map(\.json))]); return }
            for v in versions { print("v\(v.version)  \(v.updatedAt)  \(v.status.rawValue)  \(v.name)  \(v.description)") }
        }
    }
}

protocol AgentActionKind: Sendable {
    static var action: AgentAction { get }
    static var abstract: String { get }
}
enum PauseKind: AgentActionKind {
    static let action = AgentAction.pause
    static let abstract = "Pause: new goals queue but do not start; running goals finish."
}
enum ResumeKind: AgentActionKind {
    static let action = AgentAction.resume
    static let abstract = "Resume a paused or stopped agent: its queued goals start."
}
enum StopKind: AgentActionKind {
    static let action = AgentAction.stop
    static let abstract = "Stop: running goals are cancelled (recorded cancelled); queued ones wait for resume."
}
enum DeleteKind: AgentActionKind {
    static let action = AgentAction.delete
    static let abstract = "Delete (a tombstone): pending and running goals are cancelled; episodes and memory stay."
}

/// `nova-host goals …`: goals submitted to agents.
struct GoalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "goals",
        abstract: "Submit goals to agents and follow them: submit, list, show, cancel.",
        discussion: """
            A goal is queued as a run of the agent (its principal, role and tools) and run by a `serve` or \
            `worker` on the same store. Status: pending → running → completed | failed | partial | cancelled.
            Exit codes: 0 done · 1 not found or the store failed · 2 invalid input.
            """,
        subcommands: [Submit.self, List.self, Show.self, Cancel.self])

    static func printGoal(_ g: GoalView, json: Bool) {
        if json { Output.json(g.json); return }
        print("\(g.goal.id)  \(g.status)  \(g.goal.createdAt)  \(g.goal.text.prefix(60))")
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue a goal for an agent.")
        @Argument(help: "The agent (id or name).") var agent: String
        @Argument(help: "The goal, as text.") var goal: String
        @Option(help: "The plan to run (a JSON plan or @file; default: the agent's plan).") var plan: String?
        @Option(help: "An input k=v (repeatable; v is JSON if it parses, else a string).") var input: [String] = []
        @Option(help: "Run a template instead of a plan: NAME[@VERSION].") var template: String?
        @Option(name: .customLong("param"), help: "A template param k=v (repeatable; v is JSON if it parses, else a string).") var params: [String] = []
        @Option(help: "Priority (higher first).") var priority = 0
        @Option(help: "Cancel the goal if it has not started within this many seconds.") var deadlineSeconds: Int?
        @Option(help: "An idempotency key: the same key returns the same goal.") var idempotencyKey: String?
        @OptionGroup var options: AgentServiceOptions

        func run() async throws {
            var inputs: [String: JSONValue] = [:]
            for pair in input {
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { Output.error("--input must be k=v, not '\(pair)'"); throw ExitCode(ExitStatus.invalid) }
                inputs[kv[0]] = (try? JSONValue.parse(kv[1])) ?? .string(kv[1])
            }
            let planJSON = try plan.map { try jsonArgument($0, "--plan") }
            let deadline = deadlineSeconds.map { Timestamps.wallNanos() / 1_000_000 + Int64($0) * 1000 }
            var request = GoalRequest(goal: goal, plan: planJSON, inputs: inputs, priority: priority, deadlineMs: deadline, idempotencyKey: idempotencyKey)
            if let template {
                request.template = template
                do { request.params = try TemplateCommandSupport.params(params) } catch { Output.error(error.message); throw ExitCode(ExitStatus.invalid) }
            }
            let service = try await options.open()
            let submitted = request
            let (view, duplicate) = try await agentCall { try await service.submit(agent, submitted) }
            if duplicate && !options.json { Output.note("this idempotency key already submitted goal \(view.goal.id)") }
            GoalsCommand.printGoal(view, json: options.json)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An agent's goals, newest first.")
        @Argument(help: "The agent (id or name).") var agent: String
        @Option(help: "How many to show.") var limit = 50
        @Option(help: "How many to skip.") var offset = 0
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let service = try await options.open()
            let goals = try await agentCall { try await service.goals(agent, limit: limit, offset: offset) }
            if options.json { Output.json(["items": .array(goals.map(\.json))]); return }
            if goals.isEmpty { Output.note("no goals"); return }
            for g in goals { GoalsCommand.printGoal(g, json: false) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One goal with its status.")
        @Argument(help: "The goal id (its run id).") var id: String
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let service = try await options.open()
            let view = try await agentCall { try await service.goal(id) }
            if options.json { Output.json(view.json); return }
            GoalsCommand.printGoal(view, json: false)
            if let e = view.job?.lastError { print("  last error: \(e)") }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a goal (a pending one never runs; a running one is stopped).")
        @Argument(help: "The goal id.") var id: String
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let service = try await options.open()
            let (view, outcome) = try await agentCall { try await service.cancelGoal(id) }
            switch outcome {
            case .alreadyFinished, .notFound:
                Output.error("goal \(id) already finished (\(view.status))")
                throw ExitCode(ExitStatus.invalid)
            case .cancelled, .cancelling:
                GoalsCommand.printGoal(view, json: options.json)
            }
        }
    }
}

/// `nova-host memory …`: an agent's memory.
struct MemoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "An agent's memory: put, recall (full text, ranked), forget.",
        discussion: """
            Types: skill_result, user_input, system, context, observation, and those in the agent's \
            config.memory_types. Recall ranks by relevance (SQLite FTS5 bm25, PostgreSQL ts_rank); without \
            a query it lists newest first. Expired items (--ttl-seconds) are never recalled.
            Exit codes: 0 done · 1 not found or the store failed · 2 invalid input.
            """,
        subcommands: [Put.self, Recall.self, Forget.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remember a text for an agent.")
        @Argument(help: "The agent (id or name).") var agent: String
        @Argument(help: "The text.") var text: String
        @Option(help: "The memory type.") var type = "context"
        @Option(help: "A tag (repeatable).") var tag: [String] = []
        @Option(help: "Metadata (a JSON object).") var meta: String?
        @Option(help: "Forget it after this many seconds.") var ttlSeconds: Int?
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let metaJSON = try meta.map { try jsonArgument($0, "--meta") } ?? .object([:])
            let service = try await options.open()
            let item = try await agentCall { try await service.remember(agent, type: type, text: text, meta: metaJSON, tags: tag, ttlSeconds: ttlSeconds) }
            if options.json { Output.json(item.json) } else { print(item.id) }
        }
    }

    struct Recall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recall an agent's memory, best match first.")
        @Argument(help: "The agent (id or name).") var agent: String
        @Argument(help: "The full-text query (words, \"phrases\", OR; none: newest first).") var query: String?
        @Option(help: "Only this type (repeatable).") var type: [String] = []
        @Option(help: "Only items with this tag (repeatable: all of them).") var tag: [String] = []
        @Option(help: "How many.") var limit = 20
        @Option(help: "How many to skip.") var offset = 0
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            guard (1...500).contains(limit), offset >= 0 else { Output.error("--limit must be 1–500 and --offset ≥ 0"); throw ExitCode(ExitStatus.invalid) }
            let service = try await options.open()
            let hits = try await agentCall {
                try await service.recall(agent, query: RecallQuery(owner: "", text: query, types: type, tags: tag, limit: limit, offset: offset))
            }
            if options.json {
                Output.json(["items": .array(hits.map(\.json))])
                return
            }
            if hits.isEmpty { Output.note("nothing recalled"); return }
            for h in hits { print(String(format: "%8.4f  ", h.score) + "\(h.item.id)  \(h.item.type)  \(h.item.text.prefix(80))") }
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget one memory item.")
        @Argument(help: "The agent (id or name).") var agent: String
        @Argument(help: "The memory item id.") var id: String
        @OptionGroup var options: AgentServiceOptions
        func run() async throws {
            let service = try await options.open()
            try await agentCall { try await service.forget(agent, memoryId: id) }
        }
    }
}
