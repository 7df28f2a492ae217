import ArgumentParser
import Host
import JSON

/// `nova-host episodes list|show|verify|recover`.
struct EpisodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "episodes",
        abstract: "Inspect, verify and repair the hash-chained episode records.",
        discussion: "Episodes live in the segment log <data>/episodes/log/ with a mirror in <data>/episodes/log/mirror/ (docs/episodes.md). verify checks every frame's CRC, hash and link and names the first broken one; recover restores damaged frames from the mirror and truncates a torn tail.",
        subcommands: [List.self, Show.self, Verify.self, Recover.self])

    struct DataOptions: ParsableArguments {
        @Option(help: ArgumentHelp("Data directory (default: $NOVA_DATA_DIR or ./.nova).", valueName: "dir")) var data: String?
        @Option(help: ArgumentHelp(StoreOption.help, valueName: "url")) var store: String?
        @Flag(help: "Print JSON.") var json = false
        var directory: String { HostPaths.resolve(drivers: nil, data: data, policy: nil).dataDirectory }

        func open(_ mode: EpisodeFileChain.OpenMode = .recover) async throws -> EpisodeLog {
            do { return try await EpisodeLog.open(dataDirectory: directory, store: try await StoreOption.open(store), openMode: mode) } catch {
                Output.error("cannot open \(directory): \(error)")
                throw ExitCode(ExitStatus.runFailed)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @Option(help: "Only runs with this status (succeeded, failed, denied, cancelled).") var status: String?
        @Option(help: "Only runs of this principal.") var principal: String?
        @Option(help: "How many to show.") var limit = 50
        @Option(help: "How many to skip.") var offset = 0
        @OptionGroup var options: DataOptions

        func run() async throws {
            let log = try await options.open()
            let rows = try await log.list(status: status, principal: principal, limit: limit, offset: offset)
            if options.json { Output.json(.array(rows.map(\.json))); return }
            if rows.isEmpty { Output.note("no episodes in \(options.directory)"); return }
            print("SEQ   RUN ID                  STATUS      PRINCIPAL   PLAN              STARTED")
            for r in rows {
                print(String(r.seq).padding(toLength: 6, withPad: " ", startingAt: 0) + r.runId.padding(toLength: 24, withPad: " ", startingAt: 0)
                      + r.status.padding(toLength: 12, withPad: " ", startingAt: 0) + r.principal.padding(toLength: 12, withPad: " ", startingAt: 0)
                      + r.planName.padding(toLength: 18, withPad: " ", startingAt: 0) + r.startedAt)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one episode.")
        @Argument(help: "The run id.") var runId: String
        @OptionGroup var options: DataOptions

        func run() async throws {
            let log = try await options.open()
            do {
                let episode = try await log.show(runId: runId)
                Output.json(episode.document)
                if let p = episode.problem { Output.error(p); throw ExitCode(ExitStatus.runFailed) }
            } catch let e as ExitCode { throw e } catch {
                Output.error("\(error)")
                throw ExitCode(ExitStatus.runFailed)
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the hash chain and report the first broken link (changes nothing).",
            discussion: "Exit codes: 0 intact · 1 broken (the first broken link is named).")
        @OptionGroup var options: DataOptions

        func run() async throws {
            let report = try await options.open(.noRecovery).verify()
            if options.json { Output.json(report.json) } else { print(report.description) }
            if !report.isIntact { throw ExitCode(ExitStatus.runFailed) }
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Repair: remove stale temp files, restore missing or corrupt episodes from backups, re-index.")
        @OptionGroup var options: DataOptions

        func run() async throws {
            let log = try await options.open(.noRecovery)
            let report = try await log.recover()
            if options.json { Output.json(report.json) } else { print(report.description) }
            if !report.chain.isIntact { throw ExitCode(ExitStatus.runFailed) }
        }
    }
}
