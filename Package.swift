// swift-tools-version:6.0
// nova-host: a plugin host for AI-agent tools. See README.md and docs/.
import PackageDescription

/// Every Swift target builds in Swift 6 language mode (strict concurrency).
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]
/// The third-party Swift packages (SwiftNIO, AsyncHTTPClient, PostgresNIO, Hummingbird, the MCP
/// SDK, …): one shared library, libNovaDependencies.so, that the host and the Swift drivers link
/// dynamically (Packages/NovaDependencies/Package.swift says why). No target names a third-party
/// product itself: a module linked statically as well would be a second copy in the process.
/// The comment at each use names the modules that target imports.
let thirdParty: Target.Dependency = .product(name: "NovaDependencies", package: "NovaDependencies")
// An installed nova-host (PREFIX/bin) finds libNovaDependencies.so in PREFIX/lib/nova-host;
// in the build directory SwiftPM's $ORIGIN finds it.
let findsDependencies: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "-rpath=$ORIGIN/../lib/nova-host"])]
// The executables allocate through jemalloc (Debian libjemalloc-dev; libjemalloc2 at run time),
// which replaces malloc for the whole process, drivers included. A tool call allocates and frees
// hundreds of small blocks across threads; glibc's allocator spent ~10 % of the server's CPU on
// them (docs/server.md#allocator: server CPU per call a median 7 % lower with jemalloc, nine
// alternated pairs; throughput moved within the machine's noise).
let allocator: [LinkerSetting] = [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
// A driver library binds its own symbols to its own definitions (-Bsymbolic): the host
// executable exports its symbols too (JSON, DriverKit…), and without this the dynamic linker
// would resolve part of a driver's copy of those modules to the host's, mixing two copies'
// global state in one call (seen as a postgres cancel that never closed its connection once the
// host itself linked PostgresNIO statically). An installed driver (PREFIX/lib/nova-host/drivers,
// or its load copy in drivers/.gen) finds libNovaDependencies.so one or two levels up; in a host
// process it is already loaded and found by name.
let selfContainedDriver: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "-Bsymbolic", "-Xlinker", "-rpath=$ORIGIN/..:$ORIGIN/../.."]),
]

let package = Package(
    name: "nova-host",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "nova-host", targets: ["nova-host"]),
        .library(name: "DriverKit", targets: ["DriverKit"]),
        // Drivers: one dynamic library each, installed into drivers/ by `make`.
        .library(name: "nova_text", type: .dynamic, targets: ["TextDriver"]),
        .library(name: "nova_shell", type: .dynamic, targets: ["ShellDriver"]),
        .library(name: "nova_http", type: .dynamic, targets: ["HTTPDriver"]),
        .library(name: "nova_postgres", type: .dynamic, targets: ["PostgresDriver"]),
        .library(name: "nova_graphql", type: .dynamic, targets: ["GraphQLDriver"]),
        .library(name: "nova_mcp_proxy", type: .dynamic, targets: ["MCPProxyDriver"]),
    ],
    dependencies: [
        // Every third-party package, linked once into libNovaDependencies.so (see its Package.swift).
        .package(path: "Packages/NovaDependencies"),
    ],
    targets: [
        // The system SQLite (Debian libsqlite3-dev): embedded default store.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // The C ABI: the only contract between host and drivers.
        .target(name: "DriverABI", path: "Sources/DriverABI"),
        // JSON value, parser, serializer and canonical encoding (no dependencies).
        .target(name: "JSON", path: "Sources/JSON", swiftSettings: strict),
        // JSON Schema 2020-12 validator.
        .target(name: "Schema", dependencies: ["JSON"], path: "Sources/Schema", swiftSettings: strict),
        // Swift helpers to write a driver: protocol + one export line.
        .target(name: "DriverKit", dependencies: ["DriverABI", "JSON"], path: "Sources/DriverKit", swiftSettings: strict),
        // Host plumbing in C, not ABI: the monotonic clock, parent-death signal, spawn
        // close-from, the signal pipe.
        .target(name: "CHostSupport", path: "Sources/CHostSupport"),
        // One way to start a thread: joinable/detached POSIX threads, the long-lived spawn
        // thread, blocking work off the cooperative pool. Shared by the host and the shell driver.
        .target(name: "Threads", path: "Sources/Threads", swiftSettings: strict),
        // Used by every host target: hashing, locks, job pools, the signal pipe, timestamps, redaction.
        .target(name: "HostSupport", dependencies: ["CHostSupport", "Threads", "JSON"], path: "Sources/HostSupport", swiftSettings: strict),
        // The JSON Schemas of the host's documents (manifest, plan, policy, config), compiled once.
        .target(name: "HostSchemas", dependencies: ["JSON", "Schema"], path: "Sources/HostSchemas", swiftSettings: strict),
        // Drivers: discovery, loading (dlopen), generations and their call tables, process isolation, reload.
        .target(name: "Drivers",
                dependencies: ["DriverABI", "CHostSupport", "Threads", "HostSupport", "HostSchemas", "JSON", "Schema"],
                path: "Sources/Drivers", swiftSettings: strict, linkerSettings: [.linkedLibrary("dl")]),
        // Plans: the YAML/JSON plan documents, references and `when` expressions.
        .target(name: "Plans", dependencies: ["HostSchemas", "HostSupport", "JSON", "Schema", thirdParty /* Yams */],
                path: "Sources/Plans", swiftSettings: strict),
        // Episodes: the run record, the sealed hash-chained episode format and the file chain.
        .target(name: "Episodes", dependencies: ["CHostSupport", "HostSupport", "Threads", "JSON"], path: "Sources/Episodes", swiftSettings: strict),
        // The host store (episode index, policy state, job queue) with its SQLite implementation,
        // and the episode log that writes episodes and their index together.
        .target(name: "Store", dependencies: ["Episodes", "HostSupport", "Threads", "JSON", "CSQLite"],
                path: "Sources/Store", swiftSettings: strict),
        // Policy: profiles, conditions over the inputs a tool declares, rate limits and budgets.
        .target(name: "Policy", dependencies: ["Drivers", "Store", "HostSchemas", "HostSupport", "CHostSupport", "JSON", "Schema"],
                path: "Sources/Policy", swiftSettings: strict),
        // Messaging: the message bus as every interface uses it (schemas, long poll, counters)
        // and the built-in `bus` tools; the durable part is the store's MessageBusStore.
        .target(name: "Messaging", dependencies: ["Drivers", "Store", "HostSupport", "JSON", "Schema"],
                path: "Sources/Messaging", swiftSettings: strict),
        // Templates: versioned, parameterized plans (params schema, phases) and the library
        // that stores their versions and resolves `name@version`.
        .target(name: "Templates", dependencies: ["Plans", "Store", "HostSchemas", "HostSupport", "JSON", "Schema"],
                path: "Sources/Templates", swiftSettings: strict),
        // Runs: the one run pipeline (prepare, bind, validate, run, redact, record) and runs
        // through the job queue (workers, cancellation, views).
        .target(name: "Runs", dependencies: ["Drivers", "Plans", "Policy", "Episodes", "Store", "Messaging", "Templates", "HostSupport", "HostSchemas", "CHostSupport", "Threads", "JSON", "Schema"],
                path: "Sources/Runs", swiftSettings: strict),
        // Status reports: KPIs computed from the episodes of a window (plus agents and jobs) and
        // rendered as JSON, Markdown or self-contained HTML.
        .target(name: "Reports", dependencies: ["Store", "Episodes", "JSON", "HostSupport"],
                path: "Sources/Reports", swiftSettings: strict),
        // `nova-host drivers test`: a driver library checked against the ABI as the host uses it.
        .target(name: "DriverConformance", dependencies: ["Drivers", "CHostSupport", "JSON", "Schema"],
                path: "Sources/DriverConformance", swiftSettings: strict),
        // `import Host`: the host targets above, re-exported for the CLI, the server and the tests.
        .target(
            name: "Host",
            dependencies: ["Drivers", "Plans", "Policy", "Episodes", "Store", "Messaging", "Templates", "Runs", "HostSupport", "HostSchemas", "Threads"],
            path: "Sources/Host",
            swiftSettings: strict
        ),
        // The CLI, thin over Host.
        .executableTarget(
            name: "nova-host",
            dependencies: ["Host", "HostServer", "DriverConformance", "Reports", "JSON", "PostgresStore", thirdParty /* ArgumentParser, Logging */],
            path: "Sources/nova-host",
            swiftSettings: strict,
            linkerSettings: findsDependencies + allocator
        ),
        // `nova-host serve` (REST, MCP over streamable HTTP, auth, metrics) and `nova-host mcp` (stdio), thin over Host.
        .target(
            name: "HostServer",
            dependencies: ["Host", "Reports", "JSON",
                           thirdParty /* Hummingbird, HummingbirdAuth, ServiceLifecycle, MCP, JWTKit, Metrics, Prometheus, Logging, NIOCore, HTTPTypes */, "Schema"],
            path: "Sources/HostServer",
            exclude: ["UI/assets"],
            swiftSettings: strict
        ),
        // Benchmarks (not tests): `make bench`.
        .executableTarget(
            name: "nova-bench",
            dependencies: ["Host", "CHostSupport", "DriverKit", "DriverABI", "JSON", "Schema", "CSQLite", "PostgresStore",
                           thirdParty /* AsyncHTTPClient, PostgresNIO, Logging, NIOCore, NIOPosix */],
            path: "Benchmarks/nova-bench",
            swiftSettings: strict,
            linkerSettings: allocator
        ),
        // PostgreSQL connection settings (DSN parsing, TLS, failure messages without secrets):
        // shared by the `postgres` driver and the PostgreSQL store.
        .target(name: "PostgresSupport",
                dependencies: [thirdParty /* PostgresNIO, NIOSSL */],
                swiftSettings: strict),
        // The PostgreSQL implementation of the host store (several hosts share one database).
        .target(name: "PostgresStore",
                dependencies: ["Store", "Episodes", "HostSupport", "JSON", "PostgresSupport", thirdParty /* PostgresNIO, NIOCore, Logging */],
                swiftSettings: strict),
        // Drivers shipped with the host.
        .target(name: "TextDriver", dependencies: ["DriverKit", "JSON"], path: "Plugins/text", swiftSettings: strict,
                linkerSettings: selfContainedDriver),
        // `shell`: runs allowlisted programs inside nova-sandbox (Sources/Sandbox); C shims for spawn/openat2.
        .target(name: "CShellSupport", path: "Plugins/shell/CShellSupport"),
        .target(name: "ShellDriver", dependencies: ["DriverKit", "JSON", "CShellSupport", "Threads"], path: "Plugins/shell/ShellDriver", swiftSettings: strict,
                linkerSettings: selfContainedDriver),
        // Shared helpers of the network drivers (deadlines, limits); linked into each .so.
        .target(name: "DriverSupport", dependencies: ["DriverKit", "JSON"], path: "Plugins/support", swiftSettings: strict),
        .target(
            name: "HTTPDriver",
            dependencies: ["DriverKit", "DriverSupport", "JSON", thirdParty /* AsyncHTTPClient, NIOCore, NIOPosix, NIOHTTP1 */],
            path: "Plugins/http", swiftSettings: strict, linkerSettings: selfContainedDriver),
        .target(
            name: "PostgresDriver",
            dependencies: ["DriverKit", "DriverSupport", "JSON", "PostgresSupport", thirdParty /* PostgresNIO, NIOPosix, Logging */],
            path: "Plugins/postgres", swiftSettings: strict, linkerSettings: selfContainedDriver),
        .target(
            name: "GraphQLDriver",
            dependencies: ["DriverKit", "DriverSupport", "JSON", thirdParty /* GraphQL, AsyncHTTPClient, NIOCore, NIOPosix, NIOHTTP1 */],
            path: "Plugins/graphql", swiftSettings: strict, linkerSettings: selfContainedDriver),
        // `mcp_proxy`: external MCP servers (stdio children spawned like the shell driver's, with
        // its C shims and SpawnThread; streamable HTTP over AsyncHTTPClient) as namespaced tools
        // through ABI 1.1 instance tool lists. Its own JSON-RPC client on JSON (docs/mcp_proxy.md).
        .target(
            name: "MCPProxyDriver",
            dependencies: ["DriverKit", "DriverSupport", "JSON", "Schema", "CShellSupport", "Threads",
                           thirdParty /* AsyncHTTPClient, NIOCore, NIOPosix, NIOHTTP1 */],
            path: "Plugins/mcp_proxy", swiftSettings: strict, linkerSettings: selfContainedDriver),

        // Shared by the test targets: package paths, temp dirs, the allow-all gate, Outcome,
        // the process runner, a closed port.
        .target(name: "TestSupport", dependencies: ["Host", "Threads", "JSON"], path: "Tests/TestSupport", swiftSettings: strict),
        // The child process of the episode kill test (writes episodes until SIGKILLed).
        .executableTarget(name: "episode-kill-worker", dependencies: ["Episodes", "HostSupport", "Threads", "JSON"],
                          path: "Tests/EpisodeKillWorker", swiftSettings: strict),
        // A fresh PostgreSQL database per test (the server Tests/servers/with-servers.sh starts).
        .target(name: "PostgresTestSupport",
                dependencies: ["PostgresStore", "PostgresSupport", thirdParty /* PostgresNIO, Logging */],
                path: "Tests/PostgresTestSupport", swiftSettings: strict),
        .testTarget(name: "JSONTests", dependencies: ["JSON"], swiftSettings: strict),
        .testTarget(name: "SchemaTests", dependencies: ["Schema", "JSON"], swiftSettings: strict),
        .testTarget(name: "HostTests", dependencies: ["TestSupport", "Host", "Reports", "CHostSupport", "DriverKit", "DriverABI", "JSON"], swiftSettings: strict),
        .testTarget(name: "EpisodeTests", dependencies: ["TestSupport", "PostgresTestSupport", "Host", "CHostSupport", "JSON", "PostgresStore", "PostgresSupport",
                                                          thirdParty /* PostgresNIO, Logging */], swiftSettings: strict),
        // The shell driver (built libnova_shell.so + nova-sandbox) through the host, policy and CLI.
        .testTarget(name: "ShellTests", dependencies: ["TestSupport", "Host", "JSON"], swiftSettings: strict),
        // Drivers against real servers (Tests/servers/with-servers.sh starts them).
        .testTarget(name: "DriverTests", dependencies: ["TestSupport", "Host", "JSON"], swiftSettings: strict),
        // The server in-process (HummingbirdTesting): routes, auth matrix, JWT attacks, MCP, shutdown.
        .testTarget(name: "ServerTests",
                    dependencies: ["TestSupport", "PostgresTestSupport", "PostgresStore", "HostServer", "Host", "Reports", "JSON", thirdParty /* Hummingbird, HummingbirdTesting, JWTKit, MCP, Logging, NIOCore, ServiceLifecycle, HTTPTypes */],
                    swiftSettings: strict),
    ]
)
