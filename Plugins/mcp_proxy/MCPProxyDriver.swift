import AsyncHTTPClient
import Dispatch
import DriverKit
import DriverSupport
import JSON
import NIOPosix
import Synchronization

/// `mcp_proxy`: federates external MCP servers. Each configured server (a stdio command or a
/// streamable HTTP URL) becomes a namespace of tools, `mcp_proxy.<server>.<tool>`, with the
/// remote tools' descriptions and input schemas, listed through ABI 1.1 `describe_instance`
/// and refreshed on `notifications/tools/list_changed` and on a driver reload. The host applies
/// policy, budgets, input validation and episodes to these tools like to any other before the
/// driver sees a call. See docs/mcp_proxy.md.
public final class MCPProxyDriver: NovaDynamicToolsDriver {
    public static let manifest: JSONValue = [
        "name": "mcp_proxy",
        "version": "1.0.0",
        "description": "Federates external MCP servers (stdio commands or streamable HTTP URLs): each server's tools are listed as mcp_proxy.<server>.<tool>.",
        "concurrency": "thread_safe",
        "permissions": ["network": true, "filesystem": false, "process": true],
        "tools": [
            [
                "name": "servers",
                "description": "The configured MCP servers: state (connecting, ready, down), tools, restarts, last error. Never shows header or environment values.",
                "inputSchema": ["type": "object", "properties": .object([:]), "additionalProperties": false],
                "outputSchema": [
                    "type": "object", "required": ["servers"],
                    "properties": ["servers": ["type": "array", "items": ["type": "object", "required": ["name", "state", "transport", "tools"]]]],
                ],
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
                "examples": [["input": .object([:])]],
            ],
        ],
    ]

    private let servers: [String: UpstreamServer]
    private let order: [String]
    private let httpClient: HTTPClient?
    private let host = Mutex<InstanceHost?>(nil)
    private let logger = DriverLog()
    /// A change seen before the host attached its notifier (the host reads the list after
    /// `create` anyway, so this only matters for a change in between).
    private let changedBeforeAttach = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)

    public init(configuration: JSONValue) throws {
        let config = try ProxyConfig(configuration)
        let needsHTTP = config.servers.contains { if case .http = $0.transport { return true }; return false }
        var httpConfig = HTTPClient.Configuration(redirectConfiguration: .disallow)
        httpConfig.timeout = .init(connect: .milliseconds(Int64(config.servers.map(\.connectTimeoutMs).max() ?? 10_000)), read: nil)
        let client = needsHTTP ? HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: httpConfig) : nil
        httpClient = client
        let logger = self.logger
        let changed = ChangeRelay()
        var servers: [String: UpstreamServer] = [:]
        for server in config.servers {
            servers[server.name] = UpstreamServer(config: server, httpClient: client, log: logger.write, toolsChanged: changed.fire)
        }
        self.servers = servers
        self.order = config.servers.map(\.name)
        changed.target = { [weak self] in self?.toolsChanged() }
        for name in order { servers[name]!.start() }
        // `create` returns with the servers' first tool lists (or their first failures), so that
        // a plan naming their tools validates right after the driver loads. Servers that are
        // still down keep trying in the background.
        if !order.isEmpty, config.startupTimeoutMs > 0 {
            let done = DispatchSemaphore(value: 0)
            let all = Array(servers.values)
            Task {
                await withTaskGroup(of: Void.self) { group in
                    for s in all { group.addTask { await s.waitForFirstAttempt() } }
                }
                done.signal()
            }
            _ = done.wait(timeout: .now() + .milliseconds(config.startupTimeoutMs))
        }
    }

    public func attach(_ host: InstanceHost) {
        self.host.withLock { $0 = host }
        logger.attach(host)
        if changedBeforeAttach.exchange(false, ordering: .acquiringAndReleasing) { host.toolsChanged() }
    }

    private func toolsChanged() {
        guard let n = host.withLock({ $0 }) else {
            changedBeforeAttach.store(true, ordering: .releasing)
            return
        }
        n.toolsChanged()
    }

    public func instanceTools() -> [JSONValue] {
        [Self.manifest["tools"]![0]!] + order.flatMap { servers[$0]!.toolDescriptors }
    }

    public func refresh() {
        for name in order { servers[name]!.refresh() }
    }

    public func callNow(_ call: ToolCall) throws -> ToolOutput? {
        guard call.tool == "servers" else { return nil }
        return .json(["servers": .array(order.map { servers[$0]!.status })])
    }

    public func call(_ call: ToolCall) async throws -> ToolOutput {
        guard let dot = call.tool.firstIndex(of: "."), let server = servers[String(call.tool[..<dot])] else {
            throw DriverError.unknownTool(call.tool)
        }
        let remote = String(call.tool[call.tool.index(after: dot)...])
        let arguments = try call.input()
        let deadline = CallDeadline(call: call, inputTimeoutMs: nil, defaultTimeoutMs: server.config.callTimeoutMs)
        return .json(try await server.call(remote, arguments: arguments, deadline: deadline))
    }

    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for s in servers.values { s.stop() }
        if let httpClient { httpClient.shutdown { _ in _ = httpClient } }
    }
}

/// Log records of the driver's own threads. Records made before the host attached (while
/// `create` waits for the first connections) are kept and written when it does.
final class DriverLog: Sendable {
    private let state = Mutex<(host: InstanceHost?, early: [(LogLevel, String)])>((nil, []))

    var write: @Sendable (LogLevel, String) -> Void { { [self] level, message in log(level, message) } }

    func log(_ level: LogLevel, _ message: String) {
        let host = state.withLock { s -> InstanceHost? in
            if s.host == nil, s.early.count < 200 { s.early.append((level, message)) }
            return s.host
        }
        host?.log(level, message)
    }

    func attach(_ host: InstanceHost) {
        let early = state.withLock { s -> [(LogLevel, String)] in
            s.host = host
            defer { s.early = [] }
            return s.early
        }
        for (level, message) in early { host.log(level, message) }
    }
}

/// Forwards "the tools changed" from the servers to the driver, which exists only after them.
final class ChangeRelay: @unchecked Sendable {
    // @unchecked: `target` is written once in the driver's init, before any server starts.
    var target: (@Sendable () -> Void)?
    var fire: @Sendable () -> Void { { [self] in target?() } }
}

@_cdecl("nova_driver_init")
public func novaDriverInit(_ host: UnsafeRawPointer?, _ table: UnsafeMutableRawPointer?) -> Int32 {
    DriverExport.initialize(MCPProxyDriver.self, host: host, table: table)
}
