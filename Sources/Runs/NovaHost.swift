import Foundation
import JSON
import Drivers
import Episodes
import HostSchemas
import HostSupport
import Plans
import Policy
import Store
import Templates

/// Where the host finds drivers, keeps its data and reads its policy.
public struct HostPaths: Sendable {
    public var driversDirectory: String
    public var dataDirectory: String
    /// The policy profile; nil means none was found, and every call is denied.
    public var policyFile: String?
    /// Per-driver settings (`configs/drivers.json`); nil means defaults for every driver.
    public var driverConfigFile: String? = nil
    /// The templates directory: its files are imported into the store as template versions
    /// (on start and on reload). Flag, then `NOVA_TEMPLATES_DIR`, then `./templates`.
    public var templatesDirectory: String = "templates"

    /// Resolves paths: explicit flag, then environment (`NOVA_DRIVERS_DIR`, `NOVA_DATA_DIR`,
    /// `NOVA_POLICY`, `NOVA_DRIVER_CONFIG`), then the defaults `./drivers`, `./.nova`,
    /// `./configs/policy.default.json`, `./configs/drivers.json`; where the working directory has
    /// no `drivers/` (or no policy, or no driver settings), an installed layout beside the
    /// executable (`make install`): `<prefix>/lib/nova-host/drivers`,
    /// `<prefix>/share/nova-host/policy.default.json` and `<prefix>/share/nova-host/drivers.json`,
    /// with the binary in `<prefix>/bin`.
    public static func resolve(drivers: String?, data: String?, policy: String?, driverConfig: String? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               installPrefix: String? = HostPaths.installPrefix()) -> HostPaths {
        let fm = FileManager.default
        let installed = installPrefix.map { (drivers: $0 + "/lib/nova-host/drivers", policy: $0 + "/share/nova-host/policy.default.json",
                                              driverConfig: $0 + "/share/nova-host/drivers.json") }
        let defaultPolicy = "configs/policy.default.json"
        let policyFile = policy ?? environment["NOVA_POLICY"]
            ?? (fm.fileExists(atPath: defaultPolicy) ? defaultPolicy : nil)
            ?? installed.flatMap { fm.fileExists(atPath: $0.policy) ? $0.policy : nil }
        let defaultDrivers = "configs/drivers.json"
        let driverFile = driverConfig ?? environment["NOVA_DRIVER_CONFIG"] ?? (fm.fileExists(atPath: defaultDrivers) ? defaultDrivers : nil)
            ?? installed.flatMap { fm.fileExists(atPath: $0.driverConfig) ? $0.driverConfig : nil }
        var isDir: ObjCBool = false
        let localDrivers = fm.fileExists(atPath: "drivers", isDirectory: &isDir) && isDir.boolValue
        let driversDir = drivers ?? environment["NOVA_DRIVERS_DIR"]
            ?? (localDrivers ? "drivers" : installed.flatMap { fm.fileExists(atPath: $0.drivers) ? $0.drivers : nil } ?? "drivers")
        var paths = HostPaths(driversDirectory: driversDir,
                              dataDirectory: data ?? environment["NOVA_DATA_DIR"] ?? ".nova",
                              policyFile: policyFile, driverConfigFile: driverFile)
        if let t = environment["NOVA_TEMPLATES_DIR"] { paths.templatesDirectory = t }
        return paths
    }

    /// `<prefix>` when this executable is `<prefix>/bin/nova-host` of an installed layout (a
    /// `<prefix>/lib/nova-host` directory exists); nil otherwise (e.g. `.build/debug`).
    public static func installPrefix() -> String? {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
              exe.hasSuffix("/bin/nova-host") else { return nil }
        let prefix = String(exe.dropLast("/bin/nova-host".count))
        return FileManager.default.fileExists(atPath: prefix + "/lib/nova-host") ? prefix : nil
    }
}

/// The host assembled: driver registry, policy engine and run engine. The CLI and the server
/// are thin layers over this type.
public final class NovaHost: Sendable {
    public let paths: HostPaths
    public let registry: DriverRegistry
    public let policy: PolicyEngine
    public let runner: PlanRunner
    /// The one way every entry point makes a run (see `RunPipeline`).
    public var pipeline: RunPipeline {
        RunPipeline(runner: runner, policy: policy, activity: activity, finish: { [self] in await finish($0) })
    }
    /// How many runs are running and being recorded in this host (`RunPipeline`).
    let activity = RunActivity()
    /// Episodes and the store (index + policy state); nil when opened without data.
    public let episodes: EpisodeLog?
    /// Templates (versions in the store, files imported from `paths.templatesDirectory`); nil
    /// without a store.
    public let templates: TemplateLibrary?
    /// Approval requests (nil without a store that keeps them: calls needing approval are denied).
    public var approvalStore: (any ApprovalStore)? { episodes?.store as? any ApprovalStore }
    private let policyReloader: PolicyReloader

    /// Loads the policy profile and prepares the registry (no driver is opened here). With
    /// `episodes`, also opens (and recovers) the data directory: episodes, index, policy state.
    public init(paths: HostPaths, driverConfig: [String: JSONValue] = [:], episodes: EpisodeLog? = nil) throws(PolicyError) {
        self.paths = paths
        self.episodes = episodes
        let profile = try PolicyProfile.load(paths.policyFile)
        self.policy = PolicyEngine(profile: profile, persistence: episodes?.store)
        self.policyReloader = PolicyReloader(file: paths.policyFile, profile: profile)
        var (settings, retained) = try NovaHost.loadDriverSettings(paths.driverConfigFile)
        for (name, config) in driverConfig { settings[name, default: DriverSettings()].config = config }
        self.registry = DriverRegistry(driversDirectory: paths.driversDirectory, settings: settings, maxRetainedGenerations: retained)
        let templates = (episodes?.store as? any TemplateStore).map { TemplateLibrary(store: $0, directory: paths.templatesDirectory) }
        self.templates = templates
        let policy = self.policy
        let approvals = (episodes?.store as? any ApprovalStore).map { StoreApprovalWaiter(store: $0, policy: policy) }
        self.runner = PlanRunner(registry: registry, gate: policy, templates: templates, approvals: approvals)
    }

    /// The control-plane audit log (nil without a store that keeps one).
    public var auditStore: (any AuditStore)? { episodes?.store as? any AuditStore }

    /// Appends an audit entry. `actor` defaults to the request's principal (`AuditActor`), the
    /// calling run's principal, `$NOVA_PRINCIPAL`, then `local` (the CLI user). Returns why the
    /// entry could not be written, or nil (also when there is no store).
    @discardableResult
    public func audit(_ action: String, target: String = "", detail: JSONValue = .object([:]), actor: String? = nil) async -> String? {
        guard let store = auditStore else { return nil }
        let who = actor ?? AuditActor.principal ?? DriverCallContext.principal ?? ProcessInfo.processInfo.environment["NOVA_PRINCIPAL"] ?? "local"
        return await store.record(action, target: target, detail: detail, actor: who)
    }

    /// Imports the templates directory into the store (start, SIGHUP, `POST /v1/reload`); nil
    /// without a store.
    public func syncTemplates() async -> TemplateSyncReport? {
        guard let report = await templates?.sync() else { return nil }
        for id in report.created { await audit("template.import", target: id, actor: AuditActor.principal ?? "system") }
        return report
    }

    /// Re-reads the policy file (SIGHUP, `POST /v1/policy/reload`). A valid, different profile
    /// decides every run that starts afterwards; runs in flight keep the profile they started
    /// with. An unreadable or invalid file, or one `check` finds problems with, changes nothing
    /// and is reported (and shown by `policyStatus` until a later reload succeeds).
    public func reloadPolicy(check: (PolicyProfile) -> [String] = { _ in [] }) -> PolicyReloadReport {
        let tools = registry.statuses().compactMap(\.manifest).flatMap { m in m.tools.map { (id: "\(m.name).\($0.name)", inputs: $0.policyInputs) } }
        return policyReloader.reload(into: policy) { profile in profile.problems(tools: tools) + check(profile) }
    }

    /// The policy in use and the outcome of the last reload.
    public var policyStatus: PolicyStatus { policyReloader.current }

    /// Runs a plan whose inputs are already bound through the pipeline's run and record
    /// stages (tests and embedders; entry points `prepare` first). The episode write is part of
    /// the run: if it fails the caller learns it (`episodeError`), never silently.
    public func run(_ plan: Plan, inputs: [String: JSONValue], principal: String, runId: String = RunId.make(),
                    options: RunOptions = RunOptions()) async -> (record: RunRecord, episode: EpisodeRef?, episodeError: String?) {
        let request = RunRequest(plan: plan, inputs: inputs, principal: principal, options: options, origin: "api")
        let result = await pipeline.execute(request, runId: runId)
        return (result.record, result.episode, result.episodeError)
    }

    /// The pipeline's last stage: forgets the run's per-run budgets and role binding, saves
    /// policy state and writes its episode (the blocking file and database work runs off the
    /// cooperative pool).
    func finish(_ record: RunRecord) async -> (episode: EpisodeRef?, episodeError: String?) {
        policy.endRun(record.runId)
        var problems: [String] = []
        do { try await policy.flush() } catch { problems.append("could not save policy state: \(error)") }
        guard let episodes else { return (nil, problems.first) }
        do {
            let logged = try await episodes.write(record, alone: activity.isAlone)
            if let e = logged.indexError { problems.append("episode written but not indexed (repaired on next start): \(e)") }
            return (logged.ref, problems.first)
        } catch {
            problems.insert("the episode could not be written: \(error)", at: 0)
            return (nil, problems.first)
        }
    }

    /// Reads `configs/drivers.json` (validated by `schemas/drivers.schema.json`).
    public static func loadDriverSettings(_ path: String?) throws(PolicyError) -> ([String: DriverSettings], Int) {
        guard let path else { return ([:], 16) }
        guard let data = FileManager.default.contents(atPath: path) else { throw PolicyError("cannot read driver settings \(path)") }
        let json: JSONValue
        do { json = try JSONValue.parse(Array(data)) } catch { throw PolicyError("\(path) is not valid JSON: \(error)") }
        if let first = DocumentSchemas.check(json, against: DocumentSchemas.drivers).first {
            throw PolicyError("\(path): \(first.path.isEmpty ? "" : first.path + ": ")\(first.message) (see schemas/drivers.schema.json)")
        }
        var settings: [String: DriverSettings] = [:]
        for (name, entry) in json["drivers"]?.objectValue ?? [:] {
            settings[name] = DriverSettings(config: entry["config"] ?? .object([:]),
                                            isolation: DriverIsolation(rawValue: entry["isolation"]?.stringValue ?? "inprocess") ?? .inprocess)
        }
        return (settings, json["max_retained_generations"]?.intValue ?? 16)
    }
}
