import Host
import Hummingbird
import Logging
import MCP
import ServiceLifecycle

extension NovaServer {
    /// Runs the server until SIGTERM or SIGINT, then shuts down gracefully: the listener
    /// stops and open requests finish, MCP sessions close, background runs get
    /// `shutdown_grace_seconds` to finish and the rest are recorded as interrupted. `onRunning`
    /// learns the bound port (with port 0, the one picked).
    public func runUntilShutdown(host: String? = nil, port: Int? = nil,
                                 onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let app = application(host: host, port: port, onRunning: onRunning)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// `nova-host mcp`: the MCP gateway over stdio for one local principal (no network, no
/// credentials: whoever can start the process is the principal named on its command line).
public enum MCPStdio {
    /// Serves MCP on stdin/stdout until stdin closes; in-flight calls then finish (up to
    /// `grace`) before it returns. Throws `HostConfigError` if the principal has no role.
    public static func run(host: NovaHost, principal: String, role: String?, toolTimeoutMs: Int = 60_000,
                           grace: Duration = .seconds(30), logger: Logger) async throws {
        let profile = host.policy.profile
        guard let role = role ?? profile.role(of: principal) else {
            throw HostConfigError("principal '\(principal)' has no role in the policy and --role was not given")
        }
        guard profile.roles.contains(role) else {
            throw HostConfigError("role '\(role)' is not a role of the policy (\(profile.roles.joined(separator: ", ")))")
        }
        let runs = RunManager(host: host)
        let gateway = ToolGateway(runs: runs, toolTimeoutMs: toolTimeoutMs)
        let caller = Caller(principal: principal, role: role, method: .local, isAdmin: false)
        let server = await MCPToolServer.make(gateway: gateway, caller: caller, logger: logger, origin: "mcp-stdio")
        try await server.start(transport: PreflightTransport(StdioTransport(logger: logger), logger: logger))
        logger.channel(.humanUI).notice("nova-host MCP server on stdio", metadata: ["principal": .string(principal), "role": .string(role)])
        await server.waitUntilCompleted()
        await runs.shutdown(grace: grace)
    }
}

/// Logging for the server processes: JSON lines on standard error.
public enum ServerLogging {
    /// Routes every logger of the process to `JSONLogHandler` at `level`. Call once, first.
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, destination: .standardError, level: level) }
    }
}

/// `nova-host worker`: executes queued runs without an HTTP listener. Any number of workers
/// and servers share one store (PostgreSQL across machines, SQLite on one).
public enum WorkerProcess {
    /// Works the queue of `host`'s store until SIGTERM or SIGINT, then stops taking jobs, gives
    /// runs in flight `grace` to finish and releases the rest back to the queue.
    public static func run(host: NovaHost, options: JobWorkerOptions, grace: Duration, logger: Logger) async throws {
        guard let queue = host.episodes?.store.jobQueue else { throw HostConfigError("the store has no job queue") }
        let runs = RunManager(host: host)
        // Goals' plans may call memory.* for their agent.
        let bus = host.episodes?.store.messageBus.map { BusService(bus: $0) }
        var triggers: [any Service] = []
        if let agents = host.episodes?.store.agentStore {
            let service = AgentService(store: agents, queue: queue, host: host)
            service.registerTools()
            if let bus {
                service.registerBusTools(bus)
                triggers.append(TriggerService(dispatcher: TriggerDispatcher(bus: bus, agents: service, consumer: "trigger@\(options.name)"), logger: logger))
            }
        }
        host.registerApprovalTools()
        var handlers: [String: any JobHandler] = [RunJob.kind: RunJobHandler(runs: runs, agents: host.episodes?.store.agentStore, bus: bus)]
        if let log = host.episodes { handlers[ReportJobHandler.kind] = ReportJobHandler(log: log, queue: queue, bus: bus) }
        let worker = JobWorker(queue: queue, handlers: handlers, options: options, log: { logger.warning("\($0)") })
        logger.channel(.humanUI).notice("nova-host worker \(options.name) taking jobs",
                                        metadata: ["queues": .string(options.queues.joined(separator: ",")),
                                                   "concurrency": .stringConvertible(options.concurrency),
                                                   "lease_ms": .stringConvertible(options.leaseMs)])
        let service = RunService(runs: runs, worker: worker, grace: grace, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [service] + triggers, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.channel(.humanUI).notice("nova-host worker stopped after \(worker.startedCount) job(s)")
    }
}
