import ArgumentParser
import Host
import JSON
import Reports
import HostServer

/// `nova-host report`: the status of the host over a window, from its episodes, agents and jobs.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Status report: runs by status, success rate, p50/p95 per plan and tool, denials by rule, budgets, errors, agents, jobs.",
        discussion: """
            Computed from the episodes recorded in the window (newest 10,000 at most), the agents and the job \
            queue of the store (docs/reports.md). md renders tables; html is one self-contained page with inline \
            SVG charts.

            A scheduled report is a job: --schedule NAME --cron "0 8 * * *" (UTC) with --output FILE \
            and/or --topic NAME queues the first occurrence; a worker (serve or worker) builds the report, \
            writes the file (atomically) or publishes {format, report, schedule} on the topic, and queues \
            the next occurrence. Stop a schedule with nova-host jobs cancel on its pending job \
            (nova-host jobs list --kind report).

            Exit codes: 0 done · 1 the store cannot be read · 2 invalid usage or unknown agent.
            """)

    @Option(help: ArgumentHelp("The window, ending now: 30m, 24h, 7d, 2w.", valueName: "duration")) var since = "24h"
    @Option(help: ArgumentHelp("Only this agent's runs (NAME or NAMESPACE/NAME).", valueName: "name")) var agent: String?
    @Option(help: ArgumentHelp("md, json or html.", valueName: "format")) var format = "md"
    @Option(help: ArgumentHelp("Data directory (default: $NOVA_DATA_DIR or ./.nova).", valueName: "dir")) var data: String?
    @Option(help: ArgumentHelp(StoreOption.help, valueName: "url")) var store: String?
    @Option(help: ArgumentHelp("Queue a scheduled report under this name instead of printing one (needs --cron).", valueName: "name")) var schedule: String?
    @Option(help: ArgumentHelp("The schedule: five cron fields, UTC (\"0 8 * * 1-5\").", valueName: "expr")) var cron: String?
    @Option(help: ArgumentHelp("A scheduled report's file.", valueName: "file")) var output: String?
    @Option(help: ArgumentHelp("A scheduled report's topic (the bus).", valueName: "name")) var topic: String?

    func run() async throws {
        guard let format = ReportFormat(rawValue: format) else {
            Output.error("--format must be md, json or html")
            throw ExitCode(ExitStatus.invalid)
        }
        guard ReportWindow.milliseconds(since) != nil else {
            Output.error("--" + ReportWindow.help)
            throw ExitCode(ExitStatus.invalid)
        }
        let directory = HostPaths.resolve(drivers: nil, data: data, policy: nil).dataDirectory
        let log: EpisodeLog
        do { log = try await EpisodeLog.open(dataDirectory: directory, store: try await StoreOption.open(store)) } catch {
            Output.error("cannot open \(directory): \(error)")
            throw ExitCode(ExitStatus.runFailed)
        }
        if schedule != nil || cron != nil { return try await queueSchedule(log, format) }
        let report: StatusReport
        do { report = try await StatusReportBuilder(log: log).build(window: since, agent: agent) } catch let e as ReportError {
            Output.error(e.message)
            throw ExitCode(ExitStatus.invalid)
        } catch {
            Output.error("the store cannot be read: \(error)")
            throw ExitCode(ExitStatus.runFailed)
        }
        print(StatusReportRenderer.render(report, as: format), terminator: format == .json ? "\n" : "")
    }

    func queueSchedule(_ log: EpisodeLog, _ format: ReportFormat) async throws {
        guard let schedule, let cron else { Output.error("--schedule NAME and --cron EXPR go together"); throw ExitCode(ExitStatus.invalid) }
        guard let queue = log.store.jobQueue else { Output.error("the store has no job queue"); throw ExitCode(ExitStatus.runFailed) }
        let spec: JobSpec
        do {
            let payload = try ReportJobHandler.payload(name: schedule, cron: cron, since: since, format: format, agent: agent, output: output, topic: topic)
            spec = try ReportJobHandler.nextJob(payload, afterMs: Timestamps.wallNanos() / 1_000_000)
        } catch { Output.error(error.message); throw ExitCode(ExitStatus.invalid) }
        let result = try await storeCall("queueing the report") { try await queue.enqueue(spec) }
        print("scheduled report \(schedule) (\(cron), UTC): first at \(Timestamps.format(nanosSinceEpoch: (spec.runAtMs ?? 0) * 1_000_000)), job \(result.job.id)")
    }
}
