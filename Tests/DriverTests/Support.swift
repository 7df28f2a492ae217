import Foundation
@_exported import TestSupport
import Host
import JSON
import Synchronization
import Testing

/// The real servers started by `Tests/servers/with-servers.sh`. A missing variable FAILS the
/// test that needs it (these tests are never skipped).
enum Servers {
    static func value(_ name: String) throws -> String {
        let v = ProcessInfo.processInfo.environment[name]
        return try #require(v.flatMap { $0.isEmpty ? nil : $0 },
                            "\(name) is not set: run the driver tests under Tests/servers/with-servers.sh (e.g. `Tests/servers/with-servers.sh swift test`)")
    }

    /// `postgres://nova:…@127.0.0.1:PORT/nova?sslmode=disable`
    static func postgresDSN() throws -> String { try value("NOVA_TEST_PG_DSN") }
    /// `http://127.0.0.1:PORT/graphql`
    static func graphqlURL() throws -> String { try value("NOVA_TEST_GRAPHQL_URL") }
    /// `http://127.0.0.1:PORT`
    static func httpURL() throws -> String { try value("NOVA_TEST_HTTP_URL") }
    /// The password inside the DSN (to check it never shows up anywhere).
    static func postgresPassword() throws -> String {
        let dsn = try postgresDSN()
        let comps = try #require(URLComponents(string: dsn))
        return try #require(comps.password)
    }

    /// A port on 127.0.0.1 where nothing listens (bound, then closed).
    static func closedPort() throws -> Int { try Ports.closed() }
}

/// Paths and the built drivers.
enum DriverFixtures {
    /// The package root, found from this file's path.
    static let root = TestPaths.root

    /// Where `swift build` put the drivers (`NOVA_BIN_DIR`, set by `make test`).
    static let binDir = TestPaths.binDir

    /// One drivers directory for this test process with http, postgres, graphql (copied from the
    /// build, mode 0644) and the C echo example (built with cc from examples/drivers/c-echo).
    /// Shared so that each `.so` is mapped once; every test makes its own registry (its own
    /// driver instances and configuration).
    /// Prepared once, on a thread of its own: copying and stripping 250 MB of debug libraries
    /// takes seconds, and inside a lazy static initializer it would block the cooperative pool
    /// (the other thread too, waiting for the same initializer) and stall every running test.
    static let sharedDirectory = Task<Result<String, FixtureError>, Never> { await OffPool.run { prepareSharedDirectory() } }

    private static func prepareSharedDirectory() -> Result<String, FixtureError> {
        let dir = NSTemporaryDirectory() + "nova-drivers-\(UUID().uuidString.prefix(8))"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for name in ["http", "postgres", "graphql"] {
                let src = binDir + "/libnova_\(name).so"
                guard FileManager.default.fileExists(atPath: src) else {
                    throw FixtureError("\(src) does not exist: build the drivers first (swift build, or make drivers)")
                }
                try FileManager.default.copyItem(atPath: src, toPath: dir + "/libnova_\(name).so")
                stripDebugInfo(dir + "/libnova_\(name).so")
                chmod(dir + "/libnova_\(name).so", 0o644)
            }
            try buildEcho(into: dir)
            return .success(dir)
        } catch let e as FixtureError {
            return .failure(e)
        } catch {
            return .failure(FixtureError("\(error)"))
        }
    }

    struct FixtureError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func driversDirectory() async throws -> String { try await sharedDirectory.value.get() }

    /// Drops DWARF sections from a copy (same code; a debug build's `.so` is mostly debug info,
    /// and the host hashes every driver it loads). Best effort: without `strip` the copy stays.
    static func stripDebugInfo(_ path: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["strip", "--strip-debug", path]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return }
        p.waitUntilExit()
    }

    static func buildEcho(into dir: String) throws {
        let out = dir + "/libnova_echo.so"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["cc", "-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-I", root + "/Sources/DriverABI/include",
                       "-o", out, root + "/examples/drivers/c-echo/echo.c", "-lpthread"]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw FixtureError("cc failed building the C echo driver") }
        chmod(out, 0o644)
    }

    static func tempDir(_ label: String) -> String { TestPaths.tempDir(label) }

    /// Driver configuration for the test servers: loopback allowed explicitly for http (and
    /// only loopback), the test database, the test GraphQL endpoint.
    static func serverConfig() throws -> [String: JSONValue] {
        [
            "http": ["allow_cidrs": ["127.0.0.0/8"]],
            "postgres": ["dsn": .string(try Servers.postgresDSN())],
            "graphql": ["endpoint": .string(try Servers.graphqlURL())],
        ]
    }
}



/// Each driver library opened once per test process, by the host's own loader
/// (`checkSafeToLoad`, dlopen, ABI negotiation, manifest checks). Tests then create instances
/// with their own configuration from these libraries, so that a test does not pay for loading
/// (and hashing) an 80 MB debug `.so` again.
enum Libraries {
    static let loaded = Task<Result<[String: NativeDriverLibrary], DriverFixtures.FixtureError>, Never> {
        let dir: String
        do { dir = try await DriverFixtures.driversDirectory() } catch {
            return .failure(error as? DriverFixtures.FixtureError ?? DriverFixtures.FixtureError("\(error)"))
        }
        // Hashing and mapping the libraries blocks: off the cooperative pool.
        return await OffPool.run { load(dir) }
    }

    private static func load(_ dir: String) -> Result<[String: NativeDriverLibrary], DriverFixtures.FixtureError> {
        do {
            var out: [String: NativeDriverLibrary] = [:]
            for name in ["http", "postgres", "graphql", "echo"] {
                let path = dir + "/libnova_\(name).so"
                let real = try DriverDiscovery.checkSafeToLoad(path: path, driversDirectory: dir)
                out[name] = try NativeDriverLibrary(path: path, openPath: real, expectedName: name)
            }
            return .success(out)
        } catch {
            return .failure(DriverFixtures.FixtureError("loading the drivers failed: \(error)"))
        }
    }

    static func get() async throws -> [String: NativeDriverLibrary] { try await loaded.value.get() }
}

/// A driver instance owned by one test: destroyed (pools and clients closed) when the test's
/// registry goes away.
final class OwnedInstance: ToolDriver {
    let inner: NativeDriverInstance
    init(_ inner: NativeDriverInstance) { self.inner = inner }
    deinit { inner.destroy() }
    var manifest: DriverManifest { inner.manifest }
    func call(_ request: ToolCallRequest) async throws -> ToolCallResult { try await inner.call(request) }
}

/// Calls tools through the real host: registry, input/output schema validation, policy gate,
/// deadlines — a one-step plan per call. The drivers are the native `.so` libraries, each
/// instance created with this harness's configuration.
struct HostHarness {
    let registry: DriverRegistry
    let gate: any CallGate
    static let emptyDirectory = DriverFixtures.tempDir("nova-no-drivers")

    init(config: [String: JSONValue]? = nil, gate: any CallGate = AllowAllGate()) async throws {
        let config = try config ?? DriverFixtures.serverConfig()
        let libraries = try await Libraries.get()
        registry = DriverRegistry(driversDirectory: Self.emptyDirectory)
        for (name, library) in libraries {
            let driverConfig = config[name] ?? .object([:])
            registry.registerDriver(name) { OwnedInstance(try library.makeInstance(config: driverConfig)) }
        }
        self.gate = gate
    }

    var runner: PlanRunner { PlanRunner(registry: registry, gate: gate) }

    /// Runs `tool` once with `input` (and an optional step timeout) as `principal`.
    func call(_ tool: String, _ input: JSONValue, timeoutMs: Int? = nil, principal: String = "tester") async throws -> Outcome {
        var step: [String: JSONValue] = ["id": "s", "call": .string(tool), "input": input]
        if let timeoutMs { step["timeout_ms"] = .int(timeoutMs) }
        let plan = try Plan.parse(["name": "one-call", "steps": [.object(step)]])
        let record = await runner.run(plan, inputs: [:], principal: principal, runId: RunId.make())
        return Outcome(step: try #require(record.steps.first))
    }
}

/// Collects every record drivers log, process-wide (installed once).
enum LogCapture {
    static let records = Mutex<[DriverLogRecord]>([])
    static let installed: Bool = {
        DriverLogging.setSink { record in LogCapture.records.withLock { $0.append(record) } }
        return true
    }()

    static func install() { _ = installed }
    static func all() -> [DriverLogRecord] { records.withLock { $0 } }
}

extension JSONValue {
    /// The text of a JSON value, for "does this secret appear anywhere" checks.
    var text: String { serialized(sortedKeys: true) }
}

/// A unique suffix for names (tables, keys) so that tests running in parallel do not collide.
func uniqueName(_ prefix: String) -> String { "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())" }
