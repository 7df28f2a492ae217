import Foundation
import JSON
import Synchronization
import HostSupport
import Threads

/// Where a driver comes from.
public enum DriverOrigin: String, Sendable, Codable {
    case builtin
    case file
}

/// How a driver runs: inside the host (fastest, unprotected) or in a runner child process
/// (a crash kills the runner, not the host).
public enum DriverIsolation: String, Sendable, Codable {
    case inprocess
    case process
}

/// Per-driver settings from the host configuration.
public struct DriverSettings: Sendable {
    /// Passed to the driver's `create`.
    public var config: JSONValue
    public var isolation: DriverIsolation
    public init(config: JSONValue = .object([:]), isolation: DriverIsolation = .inprocess) {
        self.config = config
        self.isolation = isolation
    }
}

/// One loaded version of a driver. A reload makes a new generation; the old one finishes its
/// calls, is shut down when idle, and its image stays mapped (never `dlclose`d).
public final class DriverGeneration: Sendable {
    /// 1, 2, 3 … per registry.
    public let number: Int
    /// SHA-256 of the `.so` (or `builtin`).
    public let sha256: String
    /// The file in the drivers directory, and the private copy actually opened (`.gen/<sha>.so`).
    public let sourcePath: String?
    public let loadedPath: String?
    public let loadedAt: String
    public let driver: any ToolDriver

    init(number: Int, sha256: String, sourcePath: String?, loadedPath: String?, driver: any ToolDriver) {
        self.number = number
        self.sha256 = sha256
        self.sourcePath = sourcePath
        self.loadedPath = loadedPath
        self.loadedAt = Timestamps.now()
        self.driver = driver
    }

    var abiVersion: ABIVersion? {
        (driver as? NativeDriverInstance)?.library.abiVersion ?? (driver as? ProcessDriver)?.abiVersion
    }

    private let retired = Atomic<Bool>(false)

    /// Releases the driver once no lease is held: destroy the instance and shut the generation
    /// down (once; later calls do nothing) — for a native driver only after it has completed
    /// every call it was given, also those the host stopped waiting for at a deadline or cancel.
    /// The image is never unloaded. With `wait`, a process-isolated generation is waited for
    /// until its runner has done the same and exited.
    func retire(wait: Bool = false) {
        guard !retired.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let native = driver as? NativeDriverInstance {
            native.library.calls.whenIdle(instance: ObjectIdentifier(native)) {
                native.destroy()
                native.library.shutdown()
            }
        } else if let process = driver as? ProcessDriver {
            if wait { process.stopAndWait() } else { process.stop() }
        }
    }
}

/// What `drivers list` shows for one driver.
public struct DriverStatus: Sendable {
    public var name: String
    public var origin: DriverOrigin
    public var path: String?
    /// `discovered` (not opened yet), `loading`, `loaded`, `failed` or `removed` (draining).
    public var state: String
    public var error: String?
    public var abiVersion: ABIVersion?
    public var manifest: DriverManifest?
    /// Calls running on any generation of this driver.
    public var inFlight: Int
    public var generation: Int?
    public var sha256: String?
    public var loadedAt: String?
    /// Old generations still draining or kept mapped.
    public var retainedGenerations: Int
    /// The last reload's failure, if the new file could not replace the serving generation.
    public var reloadError: String?
    public var isolation: DriverIsolation
}

/// What one rescan of the drivers directory did.
public struct ReloadReport: Sendable, CustomStringConvertible {
    public var added: [String] = []
    /// `name: generation a → b`.
    public var replaced: [String] = []
    public var removed: [String] = []
    /// `name: reason` — the old generation keeps serving.
    public var failed: [String] = []
    public var unchanged: [String] = []
    /// Unchanged drivers whose instance was asked to re-read what it caches from outside
    /// (ABI 1.1 `refresh`: a proxy's remote tool lists).
    public var refreshed: [String] = []

    public var description: String {
        var parts: [String] = []
        if !added.isEmpty { parts.append("new: \(added.joined(separator: ", "))") }
        if !replaced.isEmpty { parts.append("replaced: \(replaced.joined(separator: ", "))") }
        if !removed.isEmpty { parts.append("removed: \(removed.joined(separator: ", "))") }
        if !failed.isEmpty { parts.append("failed (old version keeps serving): \(failed.joined(separator: "; "))") }
        if !refreshed.isEmpty { parts.append("refreshed: \(refreshed.joined(separator: ", "))") }
        if parts.isEmpty { parts.append("nothing changed") }
        return parts.joined(separator: "; ")
    }

    public var json: JSONValue {
        ["added": .array(added.map { .string($0) }), "replaced": .array(replaced.map { .string($0) }),
         "removed": .array(removed.map { .string($0) }), "failed": .array(failed.map { .string($0) }),
         "unchanged": .array(unchanged.map { .string($0) }), "refreshed": .array(refreshed.map { .string($0) })]
    }
}

/// Finds a driver by name and loads it on first use. Built-in Swift drivers and `.so` drivers
/// look the same to the interpreter: both end up behind a `ToolDriver`.
///
/// Concurrent first uses of one driver load it once: the first caller starts the load, later
/// callers await the same task. A failed load is remembered until the file changes, and it
/// never affects other drivers.
///
/// Every call is routed to the driver's current generation at the moment it starts, under the
/// same lock that swaps generations, so a reload never fails a call: calls already running
/// finish on the old generation, new calls go to the new one.
public final class DriverRegistry: Sendable {
    /// Makes a built-in driver.
    public typealias Factory = @Sendable () throws -> any ToolDriver

    private enum Slot {
        case loading(Task<DriverGeneration, any Error>)
        case loaded(Int)
        case failed(DriverLoadError, fileStamp: Int64)
    }

    private struct Lease {
        let generation: DriverGeneration
        var calls: Int
        var draining: Bool
    }

    private struct State {
        var factories: [String: Factory] = [:]
        var slots: [String: Slot] = [:]
        var loadCounts: [String: Int] = [:]
        var generations: [Int: Lease] = [:]
        /// Old generations per driver (draining or shut down; images stay mapped).
        var retired: [String: [Int]] = [:]
        var reloadErrors: [String: String] = [:]
        var nextGeneration = 1
        /// Drivers seen in the directory at start-up or by the last reload (so that a reload
        /// reports a driver as new once, not every time until it is first used).
        var seenOnDisk: Set<String>?
        /// `shutdown()` started: no new calls are routed.
        var closed = false
    }

    public let driversDirectory: String
    public let hostVersion: ABIVersion
    /// Per-driver settings (configuration for `create`, isolation).
    public let settings: [String: DriverSettings]
    /// How many old generations one driver may keep mapped before reloads of it are refused.
    public let maxRetainedGenerations: Int
    /// How a `process`-isolated driver's runner is started (the `nova-host` binary by default).
    public let runnerCommand: [String]
    private let state = Mutex(State())

    public init(driversDirectory: String, settings: [String: DriverSettings] = [:], hostVersion: ABIVersion = .host,
                maxRetainedGenerations: Int = 16, runnerCommand: [String]? = nil) {
        self.driversDirectory = driversDirectory
        self.settings = settings
        self.hostVersion = hostVersion
        self.maxRetainedGenerations = maxRetainedGenerations
        self.runnerCommand = runnerCommand ?? [ProcessDriver.defaultRunnerExecutable(), "driver-runner"]
        let present = Set(DriverDiscovery.scan(directory: driversDirectory).drivers.map(\.name))
        state.withLock { $0.seenOnDisk = present }
    }

    /// Convenience: per-driver `create` configuration only, everything in process.
    public convenience init(driversDirectory: String, driverConfig: [String: JSONValue], hostVersion: ABIVersion = .host) {
        self.init(driversDirectory: driversDirectory, settings: driverConfig.mapValues { DriverSettings(config: $0) }, hostVersion: hostVersion)
    }

    /// Registers an in-process driver under `name`. It wins over a `.so` of the same name.
    public func registerDriver(_ name: String, factory: @escaping Factory) {
        state.withLock { $0.factories[name] = factory; $0.slots[name] = nil }
    }

    /// How many times a driver was actually loaded (opened or constructed). For tests and `drivers list`.
    public func loadCount(_ name: String) -> Int { state.withLock { $0.loadCounts[name] ?? 0 } }

    // MARK: Loading

    /// The driver providing `name`, loading it if this is its first use. The result routes each
    /// call to the current generation.
    public func driver(named name: String) async throws -> any ToolDriver {
        let generation = try await activeGeneration(name)
        return RoutedDriver(name: name, registry: self, manifestAtResolve: generation.driver.manifest)
    }

    /// The generation currently serving `name`, loading it on first use.
    public func activeGeneration(_ name: String) async throws -> DriverGeneration {
        enum Next { case ready(DriverGeneration), wait(Task<DriverGeneration, any Error>), fail(DriverLoadError) }
        // Hot path: a loaded driver needs no directory scan.
        let loaded = state.withLock { s -> DriverGeneration? in
            if case .loaded(let g)? = s.slots[name] { return s.generations[g]!.generation }
            return nil
        }
        if let loaded { return loaded }
        let discovered = DriverDiscovery.scan(directory: driversDirectory).drivers.first { $0.name == name }
        let stamp = (discovered?.modifiedNanos ?? 0) &+ (discovered?.sizeBytes ?? 0)
        let next: Next = state.withLock { s in
            switch s.slots[name] {
            case .loaded(let g)?: return .ready(s.generations[g]!.generation)
            case .loading(let t)?: return .wait(t)
            case .failed(let e, let st)? where st == stamp: return .fail(e)
            default:
                let task = makeLoadTask(name: name, discovered: discovered, factory: s.factories[name], number: s.nextGeneration, stamp: stamp)
                s.nextGeneration += 1
                s.slots[name] = .loading(task)
                s.loadCounts[name, default: 0] += 1
                return .wait(task)
            }
        }
        switch next {
        case .ready(let g): return g
        case .fail(let e): throw e
        case .wait(let task):
            return try await task.value
        }
    }

    /// Records the outcome of a first load (from inside the load task, so that anyone awaiting
    /// the task — callers or `reload` — sees the slot already settled).
    private func settle(_ name: String, _ outcome: Result<DriverGeneration, DriverLoadError>, stamp: Int64) {
        state.withLock { s in
            guard case .loading? = s.slots[name] else { return }
            switch outcome {
            case .success(let g):
                s.slots[name] = .loaded(g.number)
                s.generations[g.number] = Lease(generation: g, calls: 0, draining: false)
            case .failure(let e):
                s.slots[name] = .failed(e, fileStamp: stamp)
            }
        }
    }

    private func makeLoadTask(name: String, discovered: DiscoveredDriver?, factory: Factory?, number: Int, stamp: Int64) -> Task<DriverGeneration, any Error> {
        let dir = driversDirectory
        let version = hostVersion
        let setting = settings[name] ?? DriverSettings()
        let runner = runnerCommand
        return Task<DriverGeneration, any Error> {
            let outcome: Result<DriverGeneration, DriverLoadError>
            if let factory {
                do { outcome = .success(DriverGeneration(number: number, sha256: "builtin", sourcePath: nil, loadedPath: nil, driver: try factory())) } catch {
                    outcome = .failure(.factoryFailed(driver: name, reason: "\(error)"))
                }
            } else if let discovered {
                // Off the cooperative pool: dlopen, a runner's handshake and `create` block (a
                // proxy driver's `create` waits for its first connections).
                outcome = await OffPool.run { () -> Result<DriverGeneration, DriverLoadError> in
                    do throws(DriverLoadError) {
                        return .success(try Self.load(name: name, path: discovered.path, driversDirectory: dir, setting: setting,
                                                      hostVersion: version, number: number, runnerCommand: runner))
                    } catch { return .failure(error) }
                }
            } else {
                outcome = .failure(.unknownDriver(name: name, driversDirectory: dir))
            }
            self.settle(name, outcome, stamp: stamp)
            return try outcome.get()
        }
    }

    /// Checks the file, copies it to `.gen/<sha256>.so` (so that replacing the file in place
    /// never touches a mapped image, and a new version gets a new path dlopen will not dedup),
    /// then opens and negotiates it (in process, or in a runner child).
    static func load(name: String, path: String, driversDirectory: String, setting: DriverSettings, hostVersion: ABIVersion,
                     number: Int, runnerCommand: [String]) throws(DriverLoadError) -> DriverGeneration {
        _ = try DriverDiscovery.checkSafeToLoad(path: path, driversDirectory: driversDirectory)
        let (sha, copy) = try GenerationFiles.snapshot(path: path, driversDirectory: driversDirectory)
        switch setting.isolation {
        case .inprocess:
            let library = try NativeDriverLibrary(path: path, openPath: copy, expectedName: name, hostVersion: hostVersion, generation: number)
            return DriverGeneration(number: number, sha256: sha, sourcePath: path, loadedPath: copy, driver: try library.makeInstance(config: setting.config))
        case .process:
            let driver = try ProcessDriver.start(name: name, displayPath: path, libraryPath: copy, config: setting.config, runnerCommand: runnerCommand,
                                                 generation: number)
            return DriverGeneration(number: number, sha256: sha, sourcePath: path, loadedPath: copy, driver: driver)
        }
    }

    /// The manifest of `name` without creating an instance, for `drivers inspect` and
    /// `policy validate`: the serving generation's when the driver is loaded; otherwise the
    /// library is opened, negotiated and described in this process, then shut down (its image
    /// stays mapped, as every image does). `configured` is whether an instance exists now.
    /// Built-in drivers have no library: they are loaded.
    public func describe(named name: String) async throws -> (manifest: DriverManifest, configured: Bool) {
        let (loaded, hasFactory) = state.withLock { s -> (DriverGeneration?, Bool) in
            if case .loaded(let g)? = s.slots[name] { return (s.generations[g]!.generation, s.factories[name] != nil) }
            return (nil, s.factories[name] != nil)
        }
        if let loaded { return (loaded.driver.manifest, true) }
        if hasFactory { return (try await driver(named: name).manifest, true) }
        guard let discovered = DriverDiscovery.scan(directory: driversDirectory).drivers.first(where: { $0.name == name }) else {
            throw DriverLoadError.unknownDriver(name: name, driversDirectory: driversDirectory)
        }
        let (dir, version) = (driversDirectory, hostVersion)
        return try await OffPool.run { () throws -> (DriverManifest, Bool) in
            _ = try DriverDiscovery.checkSafeToLoad(path: discovered.path, driversDirectory: dir)
            let (_, copy) = try GenerationFiles.snapshot(path: discovered.path, driversDirectory: dir)
            let library = try NativeDriverLibrary(path: discovered.path, openPath: copy, expectedName: name, hostVersion: version)
            defer { library.shutdown() }
            return (library.manifest, false)
        }
    }

    /// Resolves `driver.tool` to its driver and the tool's descriptor.
    public func resolve(toolId: String) async throws -> (driver: any ToolDriver, tool: ToolDescriptor) {
        guard let (driverName, toolName) = ToolId.split(toolId) else {
            throw ToolCallError(kind: .unknownTool, message: "'\(toolId)' is not a tool id: write <driver>.<tool>, e.g. echo.echo")
        }
        let driver = try await self.driver(named: driverName)
        guard let tool = driver.manifest.tool(named: toolName) else {
            let known = driver.manifest.tools.map { "\(driverName).\($0.name)" }.joined(separator: ", ")
            throw ToolCallError(kind: .unknownTool, message: "driver '\(driverName)' has no tool '\(toolName)' (it has: \(known))")
        }
        return (driver, tool)
    }

    // MARK: Routing

    /// Takes a lease on the generation serving `name` now (nil if the driver is gone).
    fileprivate func acquire(_ name: String) -> DriverGeneration? {
        state.withLock { s in
            guard !s.closed, case .loaded(let g)? = s.slots[name] else { return nil }
            s.generations[g]!.calls += 1
            return s.generations[g]!.generation
        }
    }

    /// Returns a lease; the last call on a draining generation shuts it down.
    fileprivate func release(_ generation: DriverGeneration) {
        let retire = state.withLock { s -> Bool in
            s.generations[generation.number]!.calls -= 1
            let lease = s.generations[generation.number]!
            return lease.draining && lease.calls == 0
        }
        if retire { generation.retire() }
    }

    /// The manifest of the generation serving `name` now.
    fileprivate func currentManifest(_ name: String) -> DriverManifest? {
        state.withLock { s in
            guard case .loaded(let g)? = s.slots[name] else { return nil }
            return s.generations[g]!.generation.driver.manifest
        }
    }

    // MARK: Reload

    /// Rescans the drivers directory (SIGHUP, `drivers reload`, `POST /v1/drivers/reload`):
    /// a new `.so` becomes available (loaded on first use); a changed one is loaded as a new
    /// generation and routing swaps to it only once it negotiated and its manifest checked out;
    /// a removed one stops taking new calls and drains. A version that fails to load leaves
    /// the old one serving, and the failure shows in `statuses()`.
    public func reload() async -> ReloadReport {
        var report = ReloadReport()
        // Let first loads in progress finish, so that they are compared like any other.
        let loading = state.withLock { s in s.slots.values.compactMap { slot -> Task<DriverGeneration, any Error>? in
            if case .loading(let t) = slot { return t }
            return nil
        } }
        for task in loading { _ = try? await task.value }
        let scan = DriverDiscovery.scan(directory: driversDirectory).drivers
        let onDisk = Dictionary(scan.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let snapshot = state.withLock { s -> [(String, DriverGeneration?)] in
            s.slots.keys.sorted().map { name in
                if case .loaded(let g)? = s.slots[name] { return (name, s.generations[g]!.generation) }
                return (name, nil)
            }
        }
        let known = Set(snapshot.map(\.0))
        // New: on disk now, neither seen before nor in use. A driver that was never used is
        // reported once, when it appears, not at every reload.
        let seen = state.withLock { s -> Set<String> in
            defer { s.seenOnDisk = Set(onDisk.keys) }
            return s.seenOnDisk ?? []
        }
        for d in scan where !known.contains(d.name) && !seen.contains(d.name) { report.added.append(d.name) }
        for name in seen.subtracting(onDisk.keys).subtracting(known).sorted() { report.removed.append(name) }
        for (name, current) in snapshot {
            if state.withLock({ $0.factories[name] != nil }) { continue }
            guard let disk = onDisk[name] else {
                if let current {
                    // Removed: no new calls; in-flight ones finish on the old generation.
                    let idle = state.withLock { s -> Bool in
                        s.slots[name] = nil
                        s.generations[current.number]!.draining = true
                        s.retired[name, default: []].append(current.number)
                        return s.generations[current.number]!.calls == 0
                    }
                    if idle { current.retire() }
                    report.removed.append(name)
                } else {
                    state.withLock { s in s.slots[name] = nil }
                }
                continue
            }
            guard let current else {
                // Not loaded (or failed): forget the failure so the next use tries the new file.
                state.withLock { s in if case .failed? = s.slots[name] { s.slots[name] = nil } }
                continue
            }
            let newSha: String
            do { newSha = try GenerationFiles.hash(path: disk.path) } catch {
                report.failed.append("\(name): \(error)")
                state.withLock { $0.reloadErrors[name] = "\(error)" }
                continue
            }
            // An unchanged file is left alone, unless its generation is quarantined: an explicit
            // reload is how an operator says "try again" (a fixed dependency, a freed resource).
            let quarantined = (current.driver as? ProcessDriver)?.quarantineReason != nil
            if newSha == current.sha256 && !quarantined {
                report.unchanged.append(name)
                if current.driver.refreshesOnReload {
                    current.driver.refresh()
                    report.refreshed.append(name)
                }
                continue
            }
            let retainedCount = state.withLock { $0.retired[name, default: []].count }
            if retainedCount >= maxRetainedGenerations {
                let message = "\(name): \(retainedCount) old generations are already mapped (limit \(maxRetainedGenerations)); restart the host to load a new version"
                report.failed.append(message)
                state.withLock { $0.reloadErrors[name] = message }
                continue
            }
            let number = state.withLock { s -> Int in defer { s.nextGeneration += 1 }; return s.nextGeneration }
            let (dir, setting, version, runner) = (driversDirectory, settings[name] ?? DriverSettings(), hostVersion, runnerCommand)
            do {
                let generation = try await OffPool.run {
                    try Self.load(name: name, path: disk.path, driversDirectory: dir, setting: setting, hostVersion: version,
                                  number: number, runnerCommand: runner)
                }
                // Swap atomically with the lease bookkeeping.
                let idle = state.withLock { s -> Bool in
                    s.generations[generation.number] = Lease(generation: generation, calls: 0, draining: false)
                    s.slots[name] = .loaded(generation.number)
                    s.loadCounts[name, default: 0] += 1
                    s.reloadErrors[name] = nil
                    s.generations[current.number]!.draining = true
                    s.retired[name, default: []].append(current.number)
                    return s.generations[current.number]!.calls == 0
                }
                if idle { current.retire() }
                report.replaced.append("\(name): generation \(current.number) → \(generation.number)\(quarantined ? " (quarantine lifted)" : "")")
            } catch {
                report.failed.append("\(name): \(error)")
                state.withLock { $0.reloadErrors[name] = "\(error)" }
            }
        }
        return report
    }

    // MARK: Orderly exit

    /// Orderly exit (`run` ends, `serve` stops): routes no new call, waits up to `grace` for the
    /// calls in flight to end, then destroys every instance and shuts every generation down,
    /// each once — for process-isolated drivers, waiting for their runners to do the same.
    /// Generations still busy after `grace` are left alone (destroying under a call would
    /// break the ABI's promise that `destroy` follows the last completion).
    public func shutdown(grace: Duration = .seconds(10)) async {
        state.withLock { $0.closed = true }
        let deadline = ContinuousClock.now + grace
        while state.withLock({ s in s.generations.values.contains { $0.calls > 0 } }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let idle = state.withLock { s in s.generations.values.filter { $0.calls == 0 }.map(\.generation) }
        await OffPool.run { for g in idle { g.retire(wait: true) } }
    }

    // MARK: Status

    /// Every driver known by name: built-ins, files on disk, and their load state. Opens nothing.
    public func statuses() -> [DriverStatus] {
        let scan = DriverDiscovery.scan(directory: driversDirectory).drivers
        return state.withLock { s in
            var names = Set(s.factories.keys)
            for d in scan { names.insert(d.name) }
            for (name, gens) in s.retired where gens.contains(where: { s.generations[$0]!.calls > 0 }) { names.insert(name) }
            return names.sorted().map { name in
                let origin: DriverOrigin = s.factories[name] != nil ? .builtin : .file
                let path = origin == .file ? scan.first { $0.name == name }?.path : nil
                let retired = s.retired[name] ?? []
                let retiredCalls = retired.reduce(0) { $0 + s.generations[$1]!.calls }
                var status = DriverStatus(name: name, origin: origin, path: path, state: "discovered", error: nil, abiVersion: nil,
                                          manifest: nil, inFlight: retiredCalls, generation: nil, sha256: nil, loadedAt: nil,
                                          retainedGenerations: retired.count, reloadError: s.reloadErrors[name],
                                          isolation: settings[name]?.isolation ?? .inprocess)
                switch s.slots[name] {
                case .loaded(let g)?:
                    let lease = s.generations[g]!
                    status.state = "loaded"
                    status.abiVersion = lease.generation.abiVersion
                    status.manifest = lease.generation.driver.manifest
                    status.inFlight += lease.calls
                    status.generation = g
                    status.sha256 = lease.generation.sha256
                    status.loadedAt = lease.generation.loadedAt
                    if let p = lease.generation.driver as? ProcessDriver, let q = p.quarantineReason { status.error = q }
                case .failed(let e, _)?:
                    status.state = "failed"
                    status.error = e.description
                case .loading?:
                    status.state = "loading"
                case nil:
                    if path == nil && origin == .file { status.state = "removed" }
                }
                return status
            }
        }
    }
}

/// What callers hold: a driver name. Each call goes to the generation serving at that moment.
struct RoutedDriver: ToolDriver {
    let name: String
    let registry: DriverRegistry
    let manifestAtResolve: DriverManifest

    var manifest: DriverManifest { registry.currentManifest(name) ?? manifestAtResolve }

    func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        guard let generation = registry.acquire(name) else {
            throw ToolCallError(kind: .unavailable, message: "driver '\(name)' was removed from \(registry.driversDirectory)")
        }
        defer { registry.release(generation) }
        return try await generation.driver.call(request)
    }
}

/// The private copies generations are loaded from: `<drivers>/.gen/<sha256>.so`.
enum GenerationFiles {
    static func hash(path: String) throws(DriverLoadError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unsafeFile(path: path, reason: "cannot read the file")
        }
        return SHA256.hex(data)
    }

    /// Hashes `path` and makes sure `.gen/<sha>.so` holds those bytes (written to a temp file
    /// and renamed, never overwritten once present). Returns the hash and the copy's path.
    static func snapshot(path: String, driversDirectory: String) throws(DriverLoadError) -> (String, String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unsafeFile(path: path, reason: "cannot read the file")
        }
        let sha = SHA256.hex(data)
        let genDir = driversDirectory + "/.gen"
        let copy = genDir + "/" + sha + ".so"
        let fm = FileManager.default
        if !fm.fileExists(atPath: copy) {
            do {
                try fm.createDirectory(atPath: genDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                let temp = genDir + "/.tmp-\(sha)-\(UInt32.random(in: 0...UInt32.max))"
                guard fm.createFile(atPath: temp, contents: data, attributes: [.posixPermissions: 0o644]) else {
                    throw DriverLoadError.unsafeFile(path: path, reason: "cannot write \(temp)")
                }
                try fm.moveItem(atPath: temp, toPath: copy)
            } catch let e as DriverLoadError { throw e } catch {
                if !fm.fileExists(atPath: copy) {
                    throw .unsafeFile(path: path, reason: "cannot copy it to \(copy): \(error.localizedDescription)")
                }
            }
        }
        return (sha, copy)
    }
}
