import Foundation
import Host
import Hummingbird
import JSON
import Logging
import MCP
import ServiceLifecycle

/// Version information of the server.
public enum NovaVersion {
    /// nova-host's version.
    public static let string = "0.1.0"
}

/// `nova-host serve`: the REST API (`/v1`, `/tools/{id}`), the MCP gateway over streamable
/// HTTP (`/mcp`), authentication, Prometheus metrics and JSON logs, thin over `NovaHost`.
///
/// Build one with `make`, then either run `application()` (with `services` alongside: the run
/// manager and the MCP session reaper) under a `ServiceGroup`, or give `router()` to
/// HummingbirdTesting.
public final class NovaServer: Sendable {
    /// The host.
    public let host: NovaHost
    /// The configuration.
    public let config: HostConfig
    /// Credentials to callers.
    public let authenticator: Authenticator
    /// Prometheus metrics.
    public let metrics: ServerMetrics
    /// Runs in flight in this process, cancel, shutdown.
    public let runs: RunManager
    /// The durable job queue of the host's store (`POST /v1/runs` enqueues there); nil without
    /// a data directory.
    public let queue: (any JobQueueStore)?
    /// Executes queued runs in this process (any number of `nova-host worker`s may share the
    /// queue too); nil when this server only accepts work.
    public let worker: JobWorker?
    /// Agents, goals and memory; nil without a data directory.
    public let agents: AgentService?
    /// The message bus (nil without a store).
    public let bus: BusService?
    /// One tool call through policy and an episode; tool lists by role.
    public let gateway: ToolGateway
    /// MCP over streamable HTTP.
    public let mcp: MCPHTTPGateway
    /// The server's logger.
    public let logger: Logger
    let routeTable = RouteTable()
    /// Signed-in dashboard sessions (`/ui`), in memory.
    let uiSessions = UISessionStore()
    /// Failed dashboard logins per client address (429 past the limit).
    let uiLoginLimiter = UILoginLimiter()

    /// Assembles the server over `host` (which should have a data directory: runs write
    /// episodes). Fails on a configuration that contradicts the policy or a bad JWT key.
    /// `config.worker` says how this server executes queued runs (nil: it only accepts them,
    /// and `nova-host worker` processes execute them).
    public static func make(host: NovaHost, config: HostConfig, logger: Logger) async throws(HostConfigError) -> NovaServer {
        let policy = host.policy
        let authenticator = try await Authenticator(config: config, profile: policy.profile, current: { policy.profile })
        return NovaServer(host: host, config: config, authenticator: authenticator, worker: config.worker, logger: logger)
    }

    private init(host: NovaHost, config: HostConfig, authenticator: Authenticator, worker workerOptions: JobWorkerOptions?, logger: Logger) {
        self.host = host
        self.config = config
        self.authenticator = authenticator
        self.logger = logger
        let metrics = ServerMetrics()
        self.metrics = metrics
        let runs = RunManager(host: host, observer: metrics)
        self.runs = runs
        let queue = host.episodes?.store.jobQueue
        self.queue = queue
        let bus = host.episodes?.store.messageBus.map { BusService(bus: $0) }
        self.bus = bus
        if let queue, let workerOptions {
            var handlers: [String: any JobHandler] = [RunJob.kind: RunJobHandler(runs: runs, agents: host.episodes?.store.agentStore, bus: bus)]
            if let log = host.episodes { handlers[ReportJobHandler.kind] = ReportJobHandler(log: log, queue: queue, bus: bus) }
            worker = JobWorker(queue: queue, handlers: handlers,
                               options: workerOptions,
                               log: { [logger] in logger.warning("\($0)") })
        } else {
            worker = nil
        }
        if let queue, let store = host.episodes?.store.agentStore {
            var service = AgentService(store: store, queue: queue, host: host)
            service.goalMaxAttempts = config.runMaxAttempts
            service.registerTools()
            agents = service
        } else {
            agents = nil
        }
        if let bus { agents?.registerBusTools(bus) }
        host.registerApprovalTools()
        let gateway = ToolGateway(runs: runs, toolTimeoutMs: config.toolTimeoutMs)
        self.gateway = gateway
        self.mcp = MCPHTTPGateway(gateway: gateway, config: config, logger: logger)
    }

    /// The services that run beside the HTTP server: the job worker with the runs in flight
    /// (graceful shutdown lets them finish; queued runs still running after the grace period
    /// go back to the queue, direct ones are recorded interrupted) and the MCP session reaper.
    public var services: [any Service] {
        [RunService(runs: runs, worker: worker, grace: .milliseconds(Int64(config.shutdownGraceSeconds * 1000)), logger: logger),
         MCPSessionReaper(mcp: mcp)] + triggerServices
    }

    /// Goals started by subscriptions' triggers, when this server runs a worker.
    public var triggerServices: [any Service] {
        guard worker != nil, let bus, let agents else { return [] }
        return [TriggerService(dispatcher: TriggerDispatcher(bus: bus, agents: agents, consumer: "trigger@\(ProcessInfo.processInfo.hostName):\(getpid())"),
                               logger: logger)]
    }

    /// Finds runs in this process, in the episodes and in the queue.
    public var lookup: RunLookup { RunLookup(runs: runs, episodes: host.episodes, queue: queue) }

    /// The Hummingbird application on the configured address (or `host`/`port` if given),
    /// with `services`. `onRunning` learns the bound port (useful with port 0).
    public func application(host: String? = nil, port: Int? = nil,
                            onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let address = BindAddress.hostname(host ?? config.host, port: port ?? config.port)
        return Application(router: router(), configuration: .init(address: address, serverName: nil), services: services,
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
                           eventLoopGroupProvider: .shared(HTTPEventLoops.group(threads: config.eventLoopThreads ?? HTTPEventLoops.defaultThreads)),
                           logger: logger)
    }

    /// Every route with its middleware.
    public func router() -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        router.add(middleware: EdgeMiddleware(corsOrigins: Set(config.corsOrigins), corsMaxAge: config.corsMaxAgeSeconds,
                                              metrics: metrics, routes: routeTable, logger: logger))
        var auth = AuthMiddleware(authenticator: authenticator)
        auth.onFailure = { [host] error, request in
            let method = request.headers[.authorization] != nil ? "authorization" : "x-api-key"
            await host.audit("auth.failure", target: request.uri.path, detail: ["reason": .string(error.description), "header": .string(method),
                                                                                "http_method": .string(request.method.rawValue)], actor: "unknown")
        }
        router.add(middleware: auth)
        addSystemRoutes(router)
        addRunRoutes(router)
        addReportRoutes(router)
        addJobRoutes(router)
        addAgentRoutes(router)
        addBusRoutes(router)
        addDriverRoutes(router)
        addPolicyRoutes(router)
        addTemplateRoutes(router)
        addApprovalRoutes(router)
        addAuditRoutes(router)
        addToolRoutes(router)
        addMCPRoutes(router)
        addDashboardRoutes(router)
        return router
    }

    /// Registers a route and remembers it for 405 answers.
    func on(_ router: Router<ServerContext>, _ method: HTTPRequest.Method, _ path: String,
            _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response) {
        routeTable.add(method, path)
        // Audit entries written while handling the request name the caller.
        router.on(RouterPath(path), method: method) { request, context in
            try await AuditActor.$principal.withValue(context.identity?.principal) { try await handler(request, context) }
        }
    }
}

/// Runs the job worker and the `RunManager` as a service: on graceful shutdown the worker
/// takes no new jobs, runs in flight get `grace` to finish, and the rest are cancelled —
/// queued runs are released back to the queue (another worker runs them again), direct runs
/// (`/tools`, MCP) are recorded `interrupted`.
public struct RunService: Service {
    let runs: RunManager
    let worker: JobWorker?
    let grace: Duration
    let logger: Logger

    /// A service over `runs` and `worker`.
    public init(runs: RunManager, worker: JobWorker?, grace: Duration, logger: Logger) {
        self.runs = runs
        self.worker = worker
        self.grace = grace
        self.logger = logger
    }

    public func run() async throws {
        let (runs, worker, grace, logger) = (self.runs, self.worker, self.grace, self.logger)
        await withTaskGroup(of: Void.self) { group in
            if let worker { group.addTask { await worker.run() } }
            let graceful: Bool
            do { try await gracefulShutdown(); graceful = true } catch { graceful = false }
            worker?.stop()
            if graceful {
                let inFlight = runs.inFlightCount
                if inFlight > 0 {
                    logger.channel(.humanUI).notice("shutting down: letting \(inFlight) run(s) finish (up to \(grace))")
                }
                let report = await runs.shutdown(grace: grace)
                if report.interrupted > 0 {
                    logger.channel(.humanUI).warning("shutdown: \(report.interrupted) run(s) interrupted (queued ones go back to the queue)")
                }
                if !report.abandoned.isEmpty {
                    logger.error("shutdown: runs did not stop: \(report.abandoned.joined(separator: ", "))")
                }
            } else {
                await runs.shutdown(grace: .zero, cancelGrace: .seconds(5))
            }
            await group.waitForAll()
        }
    }
}
