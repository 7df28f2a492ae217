import ArgumentParser
import Foundation
import Host
import JSON

/// `nova-host episodes list|show|verify|recover|replay`.
struct EpisodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "episodes",
        abstract: "Inspect, verify and repair the hash-chained episode records.",
        discussion: "Episodes live in the segment log <data>/episodes/log/ with a mirror in <data>/episodes/log/mirror/ (docs/episodes.md). verify checks every frame's CRC, hash and link and names the first broken one; recover restores damaged frames from the mirror and truncates a torn tail.",
        subcommands: [List.self, Show.self, Verify.self, Recover.self, Replay.self])

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

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-derive a recorded run's policy decisions against the current (or given) policy, without calling drivers.",
            discussion: """
                ID is a run id in the data directory (or store); a file or a directory of episode JSON files \
                (as `episodes show --json` prints them) is read instead, so CI can replay a folder against a new \
                profile. Every recorded decision is decided again by a private policy engine (no driver is called, \
                no rate limit or budget of the host is consumed) and each difference is reported in words, with \
                what it would change for the run's steps (docs/replay.md).

                --rerun submits a new run of the recorded plan with the recorded inputs and principal, recorded \
                with replay_of = ID; refused when the recorded inputs hold redacted secrets.

                Exit codes: 0 no difference · 1 differences · 2 bad usage or unreadable episode. With --rerun: as `run`.
                """)
        @Argument(help: ArgumentHelp("A run id, an episode JSON file, or a directory of them.", valueName: "id|dir")) var target: String
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Submit a new run with the recorded plan, inputs and principal, linked to this one (replay_of).") var rerun = false
        @OptionGroup var host: HostOptions

        func usage(_ message: String) -> ExitCode {
            Output.error(message)
            return ExitCode(ExitStatus.invalid)
        }

        /// The episode documents `target` names, with where each came from.
        func documents(_ nova: NovaHost?) async throws -> [(source: String, document: JSONValue)] {
            let fm = FileManager.default
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: target, isDirectory: &isDir) {
                let files = isDir.boolValue
                    ? ((try? fm.contentsOfDirectory(atPath: target)) ?? []).filter { $0.hasSuffix(".json") }.sorted().map { target + "/" + $0 }
                    : [target]
                if files.isEmpty { throw usage("no .json episode files in \(target)") }
                return try files.map { path in
                    guard let data = fm.contents(atPath: path), let value = try? JSONValue.parse(Array(data)) else {
                        throw usage("\(path) is not readable JSON")
                    }
                    return (path, EpisodeReplayer.document(from: value))
                }
            }
            guard let log = nova?.episodes else { throw usage("no episode \(target)") }
            do {
                let e = try await log.show(runId: target)
                if let p = e.problem { Output.error("warning: episode \(target): \(p)") }
                return [(target, e.document)]
            } catch {
                throw usage("no episode \(target) in \(host.paths.dataDirectory): \(error)")
            }
        }

        func run() async throws {
            let isPath = FileManager.default.fileExists(atPath: target)
            let nova = try await host.makeHost(withData: !isPath || rerun)
            let docs = try await documents(nova)
            if rerun { return try await rerunOne(docs, nova) }
            let replayer = nova.replayer()
            var reports: [JSONValue] = []
            var differing = 0
            for (source, document) in docs {
                let report: EpisodeReplayReport
                do { report = try await replayer.replay(document) } catch { throw usage("\(source): \(error)") }
                if !report.isIdentical { differing += 1 }
                if json {
                    var o = report.json.objectValue ?? [:]
                    if docs.count > 1 { o["source"] = .string(source) }
                    reports.append(.object(o))
                } else {
                    print(report.text)
                }
            }
            await nova.registry.shutdown()
            if json {
                if docs.count == 1 { Output.json(reports[0]) } else {
                    Output.json(["episodes": .array(reports), "replayed": .int(docs.count), "differing": .int(differing),
                                 "policy": .string(nova.policy.profile.hash)])
                }
            } else if docs.count > 1 {
                print("\(docs.count) episodes replayed, \(differing) with differences")
            }
            if differing > 0 { throw ExitCode(ExitStatus.runFailed) }
        }

        func rerunOne(_ docs: [(source: String, document: JSONValue)], _ nova: NovaHost) async throws {
            guard docs.count == 1 else { throw usage("--rerun takes one episode, not a directory") }
            let rerun: (submission: RunSubmission, replayOf: String)
            do { rerun = try EpisodeReplayer.rerunSubmission(docs[0].document) } catch { throw usage(error.description) }
            let (submission, replayOf) = rerun
            var request: RunRequest
            do { request = try await nova.pipeline.prepare(submission) } catch {
                throw usage("the recorded run cannot be submitted again: \(error.description)")
            }
            request.options.replayOf = replayOf
            let result = await nova.pipeline.execute(request)
            await nova.registry.shutdown()
            let record = result.record
            if json {
                var o: [String: JSONValue] = ["run_id": .string(record.runId), "replay_of": .string(replayOf), "status": .string(record.status.rawValue),
                                              "output": record.output ?? .null]
                if let e = record.error { o["error"] = .string(e) }
                if let e = result.episodeError { o["episode_error"] = .string(e) }
                Output.json(.object(o))
            } else {
                print("run \(record.runId) (replay_of \(replayOf)) \(record.status.rawValue)")
            }
            if result.episode == nil { Output.error(result.episodeError ?? "the episode was not written"); throw ExitCode(ExitStatus.runFailed) }
            switch record.status {
            case .succeeded: return
            case .denied: throw ExitCode(ExitStatus.denied)
            default: throw ExitCode(ExitStatus.runFailed)
            }
        }
    }
}
