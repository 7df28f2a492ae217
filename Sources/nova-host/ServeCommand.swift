import ArgumentParser
import Foundation
import Host
import HostServer
import JSON
import Logging

/// `nova-host serve`: REST API, MCP over streamable HTTP, Prometheus metrics (docs/server.md).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the REST API (/v1, /tools), the MCP gateway (/mcp) and Prometheus metrics (/metrics).",
        discussion: """
            Listens on 127.0.0.1:8787 unless the configuration (--config, NOVA_HOST_CONFIG; see \
            configs/host.example.json and schemas/host-config.schema.json) or --listen says otherwise. \
            Logs are JSON lines on stderr. SIGTERM or SIGINT shuts down gracefully: open requests \
            finish, runs in flight get shutdown_grace_seconds; queued runs still running then go back to the queue, direct calls are recorded as interrupted. Runs submitted with POST /v1/runs are durable jobs in the store's queue, executed here and by any nova-host worker sharing the store.

            Exit codes: 0 stopped cleanly · 1 could not start or failed · 2 invalid configuration or usage.
            """)

    @Option(help: ArgumentHelp("Server configuration, JSON (default: $NOVA_HOST_CONFIG; none = defaults, no credentials).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Listen address as host:port (port 0 picks a free one); overrides the configuration.", valueName: "host:port"))
    var listen: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Flag(help: "Do not execute queued runs here: only accept them (nova-host worker processes execute them).")
    var noWorker = false

    @OptionGroup var worker: WorkerOptions

    @OptionGroup var host: HostOptions

    func run() async throws {
        let level = try Output.logLevel(logLevel)
        var cfg = HostConfig()
        if let path = config ?? ProcessInfo.processInfo.environment["NOVA_HOST_CONFIG"] {
            do { cfg = try HostConfig.load(path: path) } catch {
                Output.error("invalid configuration: \(error.message)")
                throw ExitCode(ExitStatus.invalid)
            }
        }
        if let listen {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
                Output.error("--listen must be host:port, e.g. 127.0.0.1:8787")
                throw ExitCode(ExitStatus.invalid)
            }
            let h = String(listen[..<colon])
            cfg.host = h.hasPrefix("[") && h.hasSuffix("]") ? String(h.dropFirst().dropLast()) : (h.isEmpty ? cfg.host : h)
            cfg.port = port
        }
        if noWorker { cfg.worker = nil } else { cfg.worker = try worker.apply(to: cfg.worker ?? JobWorkerOptions()) }
        ServerLogging.bootstrap(level: level)
        let logger = Logger(label: "nova-host.serve")
        let nova = try await host.withConfiguredPaths(cfg.paths).makeHost(withData: true, configuredStore: cfg.store)
        // Shutdown settles the index (RunManager.shutdown).
        nova.episodes?.indexAfterAnswers()
        let server: NovaServer
        do { server = try await NovaServer.make(host: nova, config: cfg, logger: logger) } catch {
            Output.error("invalid configuration: \(error.message)")
            throw ExitCode(ExitStatus.invalid)
        }
        DriverLogSink.install(logger: logger, metrics: server.metrics)
        if !server.authenticator.hasCredentials {
            logger.channel(.humanUI).warning("no API keys or JWT keys are configured: every protected route answers 401 (see configs/host.example.json)")
        }
        // Hot reload: SIGHUP (or `nova-host drivers reload`, which finds us through the pid file)
        // rescans the drivers directory and re-reads the policy.
        let reloader = ReloadOnSignal(registry: nova.registry) { report in
            logger.notice("drivers reloaded: \(report)")
            func list(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }
            let detail: JSONValue = ["added": list(report.added), "replaced": list(report.replaced), "removed": list(report.removed),
                                     "failed": list(report.failed), "signal": "SIGHUP"]
            Task { await nova.audit("driver.reload", detail: detail, actor: "system") }
        }
        defer { reloader.cancel() }
        // Templates: the directory's files become versions in the store now and on every SIGHUP.
        await server.syncTemplates()
        let policyReloader = SignalPipe.subscribe(SIGHUP) {
            _ = server.reloadPolicy()
            Task { await server.syncTemplates() }
        }
        defer { policyReloader.cancel() }
        let dataDirectory = nova.paths.dataDirectory
        do { try ServePidFile.write(dataDirectory: dataDirectory) } catch {
            logger.warning("cannot write \(ServePidFile.path(dataDirectory: dataDirectory)): \(error); `nova-host drivers reload` will not find this server")
        }
        defer { ServePidFile.remove(dataDirectory: dataDirectory) }
        let boundHost = cfg.host
        do {
            try await server.runUntilShutdown { port in
                logger.channel(.humanUI).notice("nova-host \(NovaVersion.string) listening on http://\(boundHost.contains(":") ? "[\(boundHost)]" : boundHost):\(port)",
                                                metadata: ["host": .string(boundHost), "port": .stringConvertible(port)])
            }
        } catch {
            logger.channel(.humanUI).error("server failed: \(error)")
            await nova.registry.shutdown()
            throw ExitCode(ExitStatus.runFailed)
        }
        // Runs have finished or been recorded interrupted: destroy and shut the drivers down.
        await nova.registry.shutdown()
        logger.channel(.humanUI).notice("nova-host stopped")
    }
}

/// `nova-host mcp`: the MCP gateway over stdio.
struct McpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve MCP over stdio: the driver tools the principal's role may use, every call through policy and an episode.",
        discussion: """
            For MCP clients that start a server process (Claude Desktop, the Python mcp SDK's stdio_client). \
            stdout carries only MCP messages; logs are JSON lines on stderr. The caller is --principal \
            (default $NOVA_PRINCIPAL or 'local') with its role from the policy, or --role.

            Exit codes: 0 the client closed stdin · 1 failed · 2 invalid usage or unknown principal.
            """)

    @Option(help: ArgumentHelp("Who calls, as named in the policy (default: $NOVA_PRINCIPAL or 'local').", valueName: "name"))
    var principal: String?

    @Option(help: ArgumentHelp("The role to use (default: the principal's role in the policy).", valueName: "role"))
    var role: String?

    @Option(help: "Deadline of one tool call, in milliseconds.")
    var toolTimeoutMs: Int = 60_000

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    @OptionGroup var host: HostOptions

    func run() async throws {
        let level = try Output.logLevel(logLevel)
        guard toolTimeoutMs >= 1 else {
            Output.error("--tool-timeout-ms must be at least 1")
            throw ExitCode(ExitStatus.invalid)
        }
        ServerLogging.bootstrap(level: level)
        let logger = Logger(label: "nova-host.mcp")
        DriverLogSink.install(logger: logger)
        let nova = try await host.makeHost(withData: true)
        nova.episodes?.indexAfterAnswers()
        let who = principal ?? ProcessInfo.processInfo.environment["NOVA_PRINCIPAL"] ?? "local"
        do {
            try await MCPStdio.run(host: nova, principal: who, role: role, toolTimeoutMs: toolTimeoutMs, logger: logger)
        } catch let e as HostConfigError {
            await nova.registry.shutdown()
            Output.error(e.message)
            throw ExitCode(ExitStatus.invalid)
        } catch {
            await nova.registry.shutdown()
            Output.error("MCP over stdio failed: \(error)")
            throw ExitCode(ExitStatus.runFailed)
        }
        await nova.registry.shutdown()
    }
}

extension HostOptions {
    /// These options with the configuration's `paths` filled in where neither a flag nor its
    /// environment variable (`NOVA_DRIVERS_DIR`, `NOVA_POLICY`, `NOVA_DRIVER_CONFIG`,
    /// `NOVA_DATA_DIR`) says otherwise, so `serve --config DIR/nova.json` (as `nova-host init`
    /// lays it out) works from any directory.
    func withConfiguredPaths(_ paths: HostConfig.Paths,
                             environment: [String: String] = ProcessInfo.processInfo.environment) -> HostOptions {
        var options = self
        func pick(_ flag: String?, _ variable: String, _ configured: String?) -> String? {
            flag ?? (environment[variable] == nil ? configured : nil)
        }
        options.drivers = pick(drivers, "NOVA_DRIVERS_DIR", paths.drivers)
        options.policy = pick(policy, "NOVA_POLICY", paths.policy)
        options.driverConfig = pick(driverConfig, "NOVA_DRIVER_CONFIG", paths.driverConfig)
        options.data = pick(data, "NOVA_DATA_DIR", paths.data)
        options.templates = pick(templates, "NOVA_TEMPLATES_DIR", paths.templates)
        return options
    }
}
