import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Exit codes of the CLI contract (DESIGN.md): scripts rely on them.
enum ExitStatus {
    static let succeeded: Int32 = 0
    static let runFailed: Int32 = 1
    static let invalid: Int32 = 2
    static let denied: Int32 = 3
}

/// `nova-host`: runs agent plans whose steps call tools provided by drivers.
struct NovaHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nova-host",
        abstract: "Run agent plans whose steps call tools provided by drivers, under a deny-by-default policy.",
        discussion: """
            Drivers are shared libraries (.so) in the drivers directory (--drivers, NOVA_DRIVERS_DIR, \
            default ./drivers), loaded on first use. Every call passes the policy (--policy, NOVA_POLICY, \
            default ./configs/policy.default.json). Run data lives in the data directory (--data, \
            NOVA_DATA_DIR, default ./.nova).

            Exit codes: 0 success · 1 run failed · 2 invalid plan or usage · 3 denied by policy.
            """,
        subcommands: [RunCommand.self, DriversCommand.self, EpisodesCommand.self, ReportCommand.self, PolicyCommand.self, DriverRunnerCommand.self, DoctorCommand.self,
                      ServeCommand.self, McpCommand.self, WorkerCommand.self, RunsCommand.self, JobsCommand.self,
                      AgentsCommand.self, GoalsCommand.self, MemoryCommand.self, BusCommand.self,
                      TemplatesCommand.self, ApprovalsCommand.self, OrchestrateCommand.self, BlueprintsCommand.self, InitCommand.self, AuditCommand.self])
}

// A custom entry point so that usage errors exit with 2, as the CLI contract says (the
// argument parser's default is 64).
@main
enum Entry {
    static func main() async {
        do {
            var command = try NovaHostCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
            let code = NovaHostCommand.exitCode(for: error)
            if code == .success {
                print(NovaHostCommand.fullMessage(for: error))
                Glibc.exit(0)
            }
            Output.error(NovaHostCommand.fullMessage(for: error))
            Glibc.exit(ExitStatus.invalid)
        }
    }
}
