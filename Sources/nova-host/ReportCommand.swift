import ArgumentParser
import Host
import JSON
import Reports

/// `nova-host report`: the status of the host over a window, from its episodes, agents and jobs.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Status report: runs by status, success rate, p50/p95 per plan and tool, denials by rule, budgets, errors, agents, jobs.",
        discussion: """
            Computed from the episodes recorded in the window (newest 10,000 at most), the agents and the job \
            queue of the store (docs/reports.md). md renders tables; html is one self-contained page with inline \
            SVG charts.

            Exit codes: 0 done · 1 the store cannot be read · 2 invalid usage or unknown agent.
            """)

    @Option(help: ArgumentHelp("The window, ending now: 30m, 24h, 7d, 2w.", valueName: "duration")) var since = "24h"
    @Option(help: ArgumentHelp("Only this agent's runs (NAME or NAMESPACE/NAME).", valueName: "name")) var agent: String?
    @Option(help: ArgumentHelp("md, json or html.", valueName: "format")) var format = "md"
    @Option(help: ArgumentHelp("Data directory (default: $NOVA_DATA_DIR or ./.nova).", valueName: "dir")) var data: String?
    @Option(help: ArgumentHelp(StoreOption.help, valueName: "url")) var store: String?

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
}
