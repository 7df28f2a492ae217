import ArgumentParser
import Foundation
import Host
import HostServer
import JSON
import Logging

/// Options shared by `worker` and `serve` for the job worker.
struct WorkerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Queues to take jobs from, comma-separated (default: the configuration's, or 'default').", valueName: "names"))
    var queues: String?

    @Option(help: ArgumentHelp("Jobs at once (default: the configuration's, or 4).", valueName: "n"))
    var concurrency: Int?

    @Option(help: ArgumentHelp("Lease of a job, in seconds: a worker that dies loses its jobs to others this long after its last heartbeat (default 30).", valueName: "s"))
    var leaseSeconds: Double?

    @Option(help: ArgumentHelp("Backstop poll in milliseconds when no wake-up arrives (default 1000).", valueName: "ms"))
    var pollMs: Int?

    /// `base` with the options given on the command line; exits 2 on a bad value.
    func apply(to base: JobWorkerOptions) throws -> JobWorkerOptions {
        var o = base
        if let queues {
            let names = queues.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for name in names where !JobQueueLimits.isValidName(name) {
                Output.error("--queues: invalid queue name '\(name)' (use 1–64 of a-z 0-9 _ - .)")
                throw ExitCode(ExitStatus.invalid)
            }
            guard !names.isEmpty else { Output.error("--queues needs at least one queue"); throw ExitCode(ExitStatus.invalid) }
            o.queues = names
        }
        if let concurrency {
            guard (1...1024).contains(concurrency) else { Output.error("--concurrency must be from 1 to 1024"); throw ExitCode(ExitStatus.invalid) }
            o.concurrency = concurrency
        }
        if let leaseSeconds {
            guard leaseSeconds >= 0.05, leaseSeconds <= 86_400 else { Output.error("--lease-seconds must be from 0.05 to 86400"); throw ExitCode(ExitStatus.invalid) }
            o.leaseMs = Int(leaseSeconds * 1000)
        }
        if let pollMs {
            guard pollMs >= 10 else { Output.error("--poll-ms must be at least 10"); throw ExitCode(ExitStatus.invalid) }
            o.pollMs = pollMs
        }
        return o
    }
}

/// `nova-host worker`: executes queued runs, no HTTP listener.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Execute queued runs (POST /v1/runs) without serving HTTP; any number of workers share one store.",
        discussion: """
            Takes jobs from the store's durable queue (--store: a postgres:// URL shared by every host, \
            or the SQLite store of the data directory shared by the processes on this machine), runs \
            them with the drivers and policy given, heartbeats their leases, and rescues the jobs of \
            workers that died. SIGTERM or SIGINT: no new jobs; runs in flight get --grace-seconds to \
            finish, the rest go back to the queue for another worker. SIGHUP reloads the drivers.

            Exit codes: 0 stopped cleanly · 1 could not start · 2 invalid usage.
            """)

    @OptionGroup var worker: WorkerOptions

    @Option(help: ArgumentHelp("At shutdown, how long runs in flight may finish before they go back to the queue.", valueName: "s"))
    var graceSeconds: Double = 30

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @OptionGroup var host: HostOptions

    func run() async throws {
        let level = try Output.logLevel(logLevel)
        guard graceSeconds >= 0 else { Output.error("--grace-seconds must not be negative"); throw ExitCode(ExitStatus.invalid) }
        let options = try worker.apply(to: JobWorkerOptions())
        ServerLogging.bootstrap(level: level)
        let logger = Logger(label: "nova-host.worker")
        DriverLogSink.install(logger: logger)
        let nova = try await host.makeHost(withData: true)
        nova.episodes?.indexAfterAnswers()
        let reloader = ReloadOnSignal(registry: nova.registry) { report in logger.notice("drivers reloaded: \(report)") }
        defer { reloader.cancel() }
        do {
            try await WorkerProcess.run(host: nova, options: options, grace: .milliseconds(Int64(graceSeconds * 1000)), logger: logger)
        } catch {
            logger.channel(.humanUI).error("worker failed: \(error)")
            await nova.registry.shutdown()
            throw ExitCode(ExitStatus.runFailed)
        }
        await nova.registry.shutdown()
    }
}

/// Opens the store of a data directory (or `--store`) for the queue commands.
struct QueueStoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Data directory (default: $NOVA_DATA_DIR or ./.nova).", valueName: "dir")) var data: String?
    @Option(help: ArgumentHelp(StoreOption.help, valueName: "url")) var store: String?
    @Flag(help: "Print JSON.") var json = false
    var directory: String { HostPaths.resolve(drivers: nil, data: data, policy: nil).dataDirectory }

    func open() async throws -> (log: EpisodeLog, queue: any JobQueueStore) {
        let log: EpisodeLog
        do { log = try await EpisodeLog.open(dataDirectory: directory, store: try await StoreOption.open(store)) } catch {
            Output.error("cannot open the store (data directory \(directory)): \(error)")
            throw ExitCode(ExitStatus.runFailed)
        }
        guard let queue = log.store.jobQueue else { Output.error("the store has no job queue"); throw ExitCode(ExitStatus.runFailed) }
        return (log, queue)
    }

    /// An audit entry by the CLI user (`$NOVA_PRINCIPAL`, else `local`); a failure is reported, not fatal.
    static func audit(_ log: EpisodeLog, _ action: String, target: String) async {
        guard let store = log.store as? any AuditStore else { return }
        let actor = ProcessInfo.processInfo.environment["NOVA_PRINCIPAL"] ?? "local"
        await store.record(action, target: target, detail: ["via": "cli"], actor: actor)
    }
}

/// Runs a store operation, turning its failure into a message and exit 1 (bad input: exit 2).
func storeCall<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let e as JobQueueError {
        Output.error("\(what): \(e.message)")
        throw ExitCode(ExitStatus.invalid)
    } catch let e as ExitCode { throw e } catch {
        Output.error("\(what): \(error)")
        throw ExitCode(ExitStatus.runFailed)
    }
}

/// `nova-host jobs list|show|retry|cancel|discard`: the durable queue.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Inspect and manage the durable job queue: list, show, retry, cancel, discard.",
        discussion: """
            Jobs are the queue's units of work (a queued run is a job of kind 'run' whose id is the run id). \
            States: available → running → succeeded, or retryable → … → dead (the dead-letter queue), or cancelled. \
            Exit codes: 0 done · 1 the store failed or the job is not there · 2 invalid usage or a refused change.
            """,
        subcommands: [List.self, Show.self, Retry.self, Cancel.self, Discard.self])

    static func parseStates(_ text: String?) throws -> [JobState] {
        guard let text else { return [] }
        return try text.split(separator: ",").map { name in
            guard let s = JobState(rawValue: String(name)) else {
                Output.error("--state: unknown state '\(name)' (one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")))")
                throw ExitCode(ExitStatus.invalid)
            }
            return s
        }
    }

    static func time(_ ms: Int64?) -> String { ms.map { Timestamps.format(nanosSinceEpoch: $0 * 1_000_000) } ?? "-" }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first ('--state dead' is the dead-letter queue).")
        @Option(help: "Only these states, comma-separated (available, running, succeeded, retryable, dead, cancelled).") var state: String?
        @Option(help: "Only this queue.") var queue: String?
        @Option(help: "Only this kind (e.g. run).") var kind: String?
        @Option(help: "How many to show.") var limit = 50
        @Option(help: "How many to skip.") var offset = 0
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            let states = try JobsCommand.parseStates(state)
            if let q = queue, !JobQueueLimits.isValidName(q) { Output.error("--queue: invalid queue name '\(q)'"); throw ExitCode(ExitStatus.invalid) }
            guard (1...10_000).contains(limit), offset >= 0 else { Output.error("--limit must be 1–10000 and --offset ≥ 0"); throw ExitCode(ExitStatus.invalid) }
            let (_, q) = try await options.open()
            let filter = JobFilter(states: states, queue: queue, kind: kind)
            let jobs = try await storeCall("listing jobs") { try await q.listJobs(filter, limit: limit, offset: offset) }
            if options.json {
                let total = try await storeCall("counting jobs") { try await q.countJobs(filter) }
                Output.json(["jobs": .array(jobs.map(\.json)), "total": .int(total)])
                return
            }
            if jobs.isEmpty { Output.note("no jobs"); return }
            print("ID                                    KIND    QUEUE       STATE      ATTEMPT  CREATED                   LAST ERROR")
            for j in jobs {
                print(j.id.padding(toLength: 38, withPad: " ", startingAt: 0) + j.kind.padding(toLength: 8, withPad: " ", startingAt: 0)
                      + j.queue.padding(toLength: 12, withPad: " ", startingAt: 0) + j.state.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + "\(j.attempt)/\(j.maxAttempts)".padding(toLength: 9, withPad: " ", startingAt: 0)
                      + JobsCommand.time(j.createdAtMs).padding(toLength: 26, withPad: " ", startingAt: 0) + (j.lastError.map { String($0.prefix(60)) } ?? ""))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one job with its payload and the history of its attempts (JSON).")
        @Argument(help: "The job id.") var id: String
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            let (_, q) = try await options.open()
            guard let job = try await storeCall("reading job \(id)", { try await q.job(id: id) }) else {
                Output.error("no job \(id)")
                throw ExitCode(ExitStatus.runFailed)
            }
            Output.json(job.json)
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a dead, cancelled or retryable job again now.")
        @Argument(help: "The job id.") var id: String
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            let (log, q) = try await options.open()
            guard let job = try await storeCall("retrying job \(id)", { try await q.retryJob(id: id) }) else {
                Output.error("no job \(id)")
                throw ExitCode(ExitStatus.runFailed)
            }
            await QueueStoreOptions.audit(log, "job.retry", target: id)
            if options.json { Output.json(job.json) } else { print("job \(id) is available again (attempt \(job.attempt + 1) of at most \(job.maxAttempts))") }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job: a waiting one never runs; a running one is stopped by its worker.")
        @Argument(help: "The job id.") var id: String
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            let (_, q) = try await options.open()
            let outcome = try await storeCall("cancelling job \(id)") { try await q.cancelJob(id: id) }
            try JobsCommand.report(outcome, id: id, json: options.json)
        }
    }

    static func report(_ outcome: JobCancelOutcome, id: String, json: Bool) throws {
        let (status, message): (String, String)
        switch outcome {
        case .cancelled: (status, message) = ("cancelled", "\(id) cancelled before it ran")
        case .cancelling: (status, message) = ("cancelling", "\(id) is running: its worker has been asked to stop it")
        case .alreadyFinished(let s):
            Output.error("\(id) already finished (\(s.rawValue))")
            throw ExitCode(ExitStatus.invalid)
        case .notFound:
            Output.error("no job \(id)")
            throw ExitCode(ExitStatus.runFailed)
        }
        if json { Output.json(["id": .string(id), "status": .string(status)]) } else { print(message) }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a finished job (dead, cancelled or succeeded), e.g. from the dead-letter queue.")
        @Argument(help: "The job id.") var id: String
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            let (log, q) = try await options.open()
            guard try await storeCall("discarding job \(id)", { try await q.discardJob(id: id) }) else {
                Output.error("no job \(id)")
                throw ExitCode(ExitStatus.runFailed)
            }
            await QueueStoreOptions.audit(log, "job.discard", target: id)
            if options.json { Output.json(["id": .string(id), "discarded": true]) } else { print("job \(id) discarded") }
        }
    }
}

/// `nova-host runs list|show|cancel`: the CLI twin of `/v1/runs`, across every host sharing the store.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List, show and cancel runs: queued, running on any host, or recorded.",
        discussion: "Exit codes: 0 done · 1 the store failed or the run is not there · 2 invalid usage or the run already finished.",
        subcommands: [List.self, Show.self, Cancel.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Runs not yet recorded (queued, running) first, then recorded ones, newest first.")
        @Option(help: "Only runs with this status (queued, running, succeeded, failed, denied, cancelled, interrupted).") var status: String?
        @Option(help: "Only runs of this principal.") var principal: String?
        @Option(help: "How many to show.") var limit = 50
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            if let s = status, !RunViews.listableStatuses.contains(s) {
                Output.error("--status must be one of \(RunViews.listableStatuses.joined(separator: ", "))")
                throw ExitCode(ExitStatus.invalid)
            }
            guard (1...10_000).contains(limit) else { Output.error("--limit must be 1–10000"); throw ExitCode(ExitStatus.invalid) }
            let (log, q) = try await options.open()
            var rows: [JSONValue] = []
            if status == nil || status == "queued" || status == "running" {
                let lookup = RunLookup(runs: nil, episodes: log, queue: q)
                rows += try await storeCall("listing queued runs") { try await lookup.pendingRuns(status: status, principal: principal, limit: limit) }
                    .map(RunViews.run(job:))
            }
            if rows.count < limit && status != "queued" && status != "running" {
                let recorded = try await storeCall("listing recorded runs") { try await log.list(status: status, principal: principal, limit: limit - rows.count, offset: 0) }
                rows += recorded.map(RunViews.run(summary:))
            }
            if options.json { Output.json(.array(rows)); return }
            if rows.isEmpty { Output.note("no runs"); return }
            print("RUN ID                                STATUS      PRINCIPAL   PLAN              STARTED")
            for r in rows {
                func f(_ k: String, _ w: Int) -> String { (r[k]?.stringValue ?? "").padding(toLength: w, withPad: " ", startingAt: 0) }
                print(f("run_id", 38) + f("status", 12) + f("principal", 12) + f("plan_name", 18) + (r["started_at"]?.stringValue ?? ""))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one run (JSON): its status, output, steps, episode and job attempts.")
        @Argument(help: "The run id.") var runId: String
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            let (log, q) = try await options.open()
            guard let found = try await storeCall("reading run \(runId)", { try await RunLookup(runs: nil, episodes: log, queue: q).find(runId: runId) }) else {
                Output.error("no run \(runId)")
                throw ExitCode(ExitStatus.runFailed)
            }
            Output.json(found.view)
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a queued run, or ask the worker running it to stop it (it is recorded cancelled).")
        @Argument(help: "The run id.") var runId: String
        @OptionGroup var options: QueueStoreOptions

        func run() async throws {
            let (_, q) = try await options.open()
            let outcome = try await storeCall("cancelling run \(runId)") { try await q.cancelJob(id: runId) }
            try JobsCommand.report(outcome, id: runId, json: options.json)
        }
    }
}
