import ArgumentParser
import Foundation
import Host
import JSON
import Reports

/// `nova-host audit`: the control-plane audit log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "The control-plane audit log: list, verify, export.",
        discussion: """
            Who changed what: driver and policy reloads, templates created or imported, agents created, \
            updated, paused, resumed, stopped or deleted, approvals and denials, failed authentications \
            (API key or JWT), job retries and discards. Each entry is hash-chained to the one before \
            (SHA-256 of the previous hash and the entry's canonical JSON), like episodes.

            export writes JSON lines, one entry each with its hash and prev_hash, so an auditor can check \
            the chain offline: nova-host audit verify --file audit.jsonl.

            Exit codes: 0 ok (verify: intact) · 1 store error, or verify found a broken entry · 2 usage.
            """,
        subcommands: [List.self, Verify.self, Export.self])

    static func store(_ options: QueueStoreOptions) async throws -> any AuditStore {
        let (log, _) = try await options.open()
        guard let store = log.store as? any AuditStore else { Output.error("the store keeps no audit log"); throw ExitCode(ExitStatus.runFailed) }
        return store
    }

    struct Filter: ParsableArguments {
        @Option(help: "Only this actor's entries.") var actor: String?
        @Option(help: ArgumentHelp("Only this action, or a prefix ending in '.' (agent.).", valueName: "action")) var action: String?
        @Option(help: ArgumentHelp("Only entries of this window: 30m, 24h, 7d.", valueName: "window")) var since: String?
        @Option(help: "At most this many entries (oldest first).") var limit = 1000

        func make() throws -> AuditFilter {
            var f = AuditFilter(actor: actor, action: action)
            if let since {
                guard let ms = ReportWindow.milliseconds(since) else { Output.error("--" + ReportWindow.help); throw ExitCode(ExitStatus.invalid) }
                f.sinceMs = Timestamps.wallNanos() / 1_000_000 - ms
            }
            guard (1...1_000_000).contains(limit) else { Output.error("--limit must be from 1 to 1000000"); throw ExitCode(ExitStatus.invalid) }
            return f
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entries, oldest first.")
        @OptionGroup var filter: Filter
        @OptionGroup var options: QueueStoreOptions
        func run() async throws {
            let f = try filter.make()
            let store = try await AuditCommand.store(options)
            let entries = try await storeCall("reading the audit log") { try await store.listAudit(f, limit: filter.limit) }
            if options.json { Output.json(["entries": .array(entries.map(\.json))]); return }
            if entries.isEmpty { print("no audit entries") }
            for e in entries {
                print("\(e.seq)  \(e.at)  \(e.actor)  \(e.action)  \(e.target)  \(e.detail.serialized(sortedKeys: true))")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the chain (the store's, or an export with --file): the first broken entry and why.")
        @Option(help: ArgumentHelp("A JSON-lines export to check offline instead of the store.", valueName: "file")) var file: String?
        @OptionGroup var options: QueueStoreOptions
        func run() async throws {
            let count: Int64
            let broken: (seq: Int64, problem: String)?
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { Output.error("cannot read \(file)"); throw ExitCode(ExitStatus.invalid) }
                var entries: [AuditEntry] = []
                for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() where !line.isEmpty {
                    guard let json = try? JSONValue.parse(String(line)), let e = AuditEntry(json: json) else {
                        Output.error("\(file):\(i + 1): not an audit entry"); throw ExitCode(ExitStatus.invalid)
                    }
                    entries.append(e)
                }
                // An export may start after the first entry: its first prev_hash anchors it.
                count = Int64(entries.count)
                broken = AuditEntry.firstBreak(entries, after: entries.first?.prevHash ?? AuditEntry.genesis, firstSeq: entries.first?.seq ?? 1)
            } else {
                let store = try await AuditCommand.store(options)
                (count, broken) = try await storeCall("verifying the audit log") { try await store.verifyAudit() }
            }
            if options.json {
                Output.json(["entries": .int(Int(count)), "intact": .bool(broken == nil),
                             "broken": broken.map { ["seq": .int(Int($0.seq)), "problem": .string($0.problem)] } ?? .null])
            } else if let broken {
                print("audit log broken at entry \(broken.seq): \(broken.problem)")
            } else {
                print("audit log intact: \(count) entries")
            }
            if broken != nil { throw ExitCode(ExitStatus.runFailed) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entries as JSON lines with their hashes (stdout, or --output).")
        @OptionGroup var filter: Filter
        @Option(help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file")) var output: String?
        @OptionGroup var options: QueueStoreOptions
        func run() async throws {
            let f = try filter.make()
            let store = try await AuditCommand.store(options)
            let entries = try await storeCall("reading the audit log") { try await store.listAudit(f, limit: filter.limit) }
            let text = entries.map { $0.json.serialized(sortedKeys: true) }.joined(separator: "\n") + (entries.isEmpty ? "" : "\n")
            if let output {
                do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch { Output.error("cannot write \(output): \(error)"); throw ExitCode(ExitStatus.runFailed) }
                Output.note("\(entries.count) entries written to \(output)")
            } else {
                print(text, terminator: "")
            }
        }
    }
}
