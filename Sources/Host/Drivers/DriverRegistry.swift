import JSON
import Synchronization

/// Where a driver comes from.
public enum DriverOrigin: String, Sendable, Codable {
    case builtin
    case file
}

/// What `drivers list` shows for one driver.
public struct DriverStatus: Sendable {
    public var name: String
    public var origin: DriverOrigin
    public var path: String?
    /// `discovered` (not opened yet), `loaded`, or `failed`.
    public var state: String
    public var error: String?
    public var abiVersion: ABIVersion?
    public var manifest: DriverManifest?
    public var inFlight: Int
}

/// Finds a driver by name and loads it on first use. Built-in Swift drivers and `.so` drivers
/// look the same to the interpreter: both end up as a `ToolDriver`.
///
/// Concurrent first uses of one driver load it once: the first caller starts the load, later
/// callers await the same task. A failed load is remembered until the file changes, and it
/// never affects other drivers.
public final class DriverRegistry: Sendable {
    /// Makes a built-in driver.
    public typealias Factory = @Sendable () throws -> any ToolDriver

    private enum Slot {
        case loading(Task<any ToolDriver, any Error>)
        case loaded(any ToolDriver, path: String?, abi: ABIVersion?)
        case failed(DriverLoadError, path: String?, fileStamp: Int64)
    }

    private struct State {
        var factories: [String: Factory] = [:]
        var slots: [String: Slot] = [:]
        var loadCounts: [String: Int] = [:]
    }

    public let driversDirectory: String
    public let hostVersion: ABIVersion
    /// Per-driver configuration passed to `create`.
    public let driverConfig: [String: JSONValue]
    private let state = Mutex(State())

    public init(driversDirectory: String, driverConfig: [String: JSONValue] = [:], hostVersion: ABIVersion = .host) {
        self.driversDirectory = driversDirectory
        self.driverConfig = driverConfig
        self.hostVersion = hostVersion
    }

    /// Registers an in-process driver under `name`. It wins over a `.so` of the same name.
    public func registerDriver(_ name: String, factory: @escaping Factory) {
        state.withLock { $0.factories[name] = factory; $0.slots[name] = nil }
    }

    /// How many times a driver was actually loaded (opened or constructed). For tests and `drivers list`.
    public func loadCount(_ name: String) -> Int { state.withLock { $0.loadCounts[name] ?? 0 } }

    /// Splits `driver.tool` into its parts.
    public static func split(toolId: String) -> (driver: String, tool: String)? {
        guard let dot = toolId.firstIndex(of: "."), dot != toolId.startIndex else { return nil }
        let tool = toolId[toolId.index(after: dot)...]
        guard !tool.isEmpty else { return nil }
        return (String(toolId[..<dot]), String(tool))
    }

    /// The driver providing `name`, loading it if this is its first use.
    public func driver(named name: String) async throws -> any ToolDriver {
        enum Next { case ready(any ToolDriver), wait(Task<any ToolDriver, any Error>), fail(DriverLoadError) }
        let discovered = DriverDiscovery.scan(directory: driversDirectory).drivers.first { $0.name == name }
        let next: Next = state.withLock { s in
            switch s.slots[name] {
            case .loaded(let d, _, _)?: return .ready(d)
            case .loading(let t)?: return .wait(t)
            case .failed(let e, _, let stamp)? where stamp == (discovered?.modifiedNanos ?? 0) &+ (discovered?.sizeBytes ?? 0):
                return .fail(e)
            default:
                let factory = s.factories[name]
                let config = driverConfig[name] ?? .object([:])
                let dir = driversDirectory
                let version = hostVersion
                let task = Task<any ToolDriver, any Error> {
                    if let factory {
                        do { return try factory() } catch {
                            throw DriverLoadError.factoryFailed(driver: name, reason: "\(error)")
                        }
                    }
                    guard let discovered else { throw DriverLoadError.unknownDriver(name: name, driversDirectory: dir) }
                    let real = try DriverDiscovery.checkSafeToLoad(path: discovered.path, driversDirectory: dir)
                    let library = try NativeDriverLibrary(path: discovered.path, openPath: real, expectedName: name, hostVersion: version)
                    return try library.makeInstance(config: config)
                }
                s.slots[name] = .loading(task)
                s.loadCounts[name, default: 0] += 1
                return .wait(task)
            }
        }
        switch next {
        case .ready(let d): return d
        case .fail(let e): throw e
        case .wait(let task):
            do {
                let d = try await task.value
                state.withLock { s in
                    if case .loading? = s.slots[name] {
                        s.slots[name] = .loaded(d, path: discovered?.path, abi: (d as? NativeDriverInstance)?.library.abiVersion)
                    }
                }
                return d
            } catch let error as DriverLoadError {
                let stamp = (discovered?.modifiedNanos ?? 0) &+ (discovered?.sizeBytes ?? 0)
                state.withLock { s in
                    if case .loading? = s.slots[name] { s.slots[name] = .failed(error, path: discovered?.path, fileStamp: stamp) }
                }
                throw error
            }
        }
    }

    /// Resolves `driver.tool` to its driver and the tool's descriptor.
    public func resolve(toolId: String) async throws -> (driver: any ToolDriver, tool: ToolDescriptor) {
        guard let (driverName, toolName) = DriverRegistry.split(toolId: toolId) else {
            throw ToolCallError(kind: .unknownTool, message: "'\(toolId)' is not a tool id: write <driver>.<tool>, e.g. echo.echo")
        }
        let driver = try await self.driver(named: driverName)
        guard let tool = driver.manifest.tool(named: toolName) else {
            let known = driver.manifest.tools.map { "\(driverName).\($0.name)" }.joined(separator: ", ")
            throw ToolCallError(kind: .unknownTool, message: "driver '\(driverName)' has no tool '\(toolName)' (it has: \(known))")
        }
        return (driver, tool)
    }

    /// Every driver known by name: built-ins, files on disk, and their load state. Opens nothing.
    public func statuses() -> [DriverStatus] {
        let scan = DriverDiscovery.scan(directory: driversDirectory).drivers
        return state.withLock { s in
            var names = Set(s.factories.keys)
            for d in scan { names.insert(d.name) }
            return names.sorted().map { name in
                let origin: DriverOrigin = s.factories[name] != nil ? .builtin : .file
                let path = origin == .file ? scan.first { $0.name == name }?.path : nil
                switch s.slots[name] {
                case .loaded(let d, _, let abi)?:
                    return DriverStatus(name: name, origin: origin, path: path, state: "loaded", error: nil, abiVersion: abi,
                                        manifest: d.manifest, inFlight: (d as? NativeDriverInstance)?.inFlight.value ?? 0)
                case .failed(let e, _, _)?:
                    return DriverStatus(name: name, origin: origin, path: path, state: "failed", error: e.description,
                                        abiVersion: nil, manifest: nil, inFlight: 0)
                case .loading?:
                    return DriverStatus(name: name, origin: origin, path: path, state: "loading", error: nil, abiVersion: nil, manifest: nil, inFlight: 0)
                case nil:
                    return DriverStatus(name: name, origin: origin, path: path, state: "discovered", error: nil, abiVersion: nil, manifest: nil, inFlight: 0)
                }
            }
        }
    }
}
