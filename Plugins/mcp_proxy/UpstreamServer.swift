import AsyncHTTPClient
import DriverKit
import DriverSupport
import JSON
import Schema
import Synchronization

/// One remote tool as the proxy lists it.
struct RemoteTool: Sendable {
    /// The name the server uses (`tools/call` takes it).
    let remoteName: String
    /// The descriptor the host sees: name `<server>.<tool>`, the server's description, input
    /// schema and (when trusted) annotations.
    let descriptor: JSONValue
}

/// One upstream MCP server: connects, initializes, lists its tools, follows
/// `notifications/tools/list_changed`, and reconnects — a stdio server is restarted — with
/// exponential backoff whenever the connection ends. Calls made while it is down fail at once
/// with `server_unavailable`, saying when the next attempt is.
final class UpstreamServer: Sendable {
    enum Phase: Sendable {
        case connecting
        case ready(RPCSession)
        case down(reason: String, retryAtNanos: Int64)
        case stopped
    }

    private struct State {
        var phase: Phase = .connecting
        var tools: [String: RemoteTool] = [:]
        /// Tools the server lists that the proxy cannot offer, with why.
        var skipped: [String: String] = [:]
        var serverInfo: JSONValue?
        var protocolVersion: String?
        /// Connections made after the first one (restarts of a stdio server).
        var restarts = 0
        var connections = 0
        var consecutiveFailures = 0
        /// The backoff chosen after the last failure.
        var backoffMs: Int?
        var lastError: String?
        var pid: Int32?
        var listedAt: Int64?
        /// Wakes the supervisor out of its backoff sleep (refresh, stop).
        var wake: CheckedContinuation<Void, Never>?
        var supervisor: Task<Void, Never>?
    }

    let config: UpstreamConfig
    private let state = Mutex(State())
    /// Opens once the first connection attempt has succeeded or failed.
    private let firstAttempt = Gate()
    private let httpClient: HTTPClient?
    private let log: @Sendable (LogLevel, String) -> Void
    /// Called when this server's tool list changed (the driver notifies the host).
    private let toolsChanged: @Sendable () -> Void
    /// A connection that stayed up this long resets the backoff.
    private static let stableNanos: Int64 = 30_000_000_000
    static let protocolVersion = "2025-06-18"

    init(config: UpstreamConfig, httpClient: HTTPClient?, log: @escaping @Sendable (LogLevel, String) -> Void,
         toolsChanged: @escaping @Sendable () -> Void) {
        (self.config, self.httpClient, self.log, self.toolsChanged) = (config, httpClient, log, toolsChanged)
    }

    // MARK: Supervision

    func start() {
        let task = Task { [self] in await supervise() }
        state.withLock { $0.supervisor = task }
    }

    /// Waits until the first connection attempt has succeeded or failed.
    func waitForFirstAttempt() async { await firstAttempt.wait() }

    private var isStopped: Bool { state.withLock { if case .stopped = $0.phase { return true }; return false } }

    private func supervise() async {
        while !isStopped {
            let started = monotonicNanos()
            do {
                let session = try await connect()
                firstAttempt.open()
                let why = await session.waitUntilClosed()
                session.close(why)
                if isStopped { return }
                log(.warning, "server '\(config.name)': connection ended: \(why)")
                markDown(why, upFor: monotonicNanos() - started)
            } catch {
                firstAttempt.open()
                if isStopped { return }
                let why = Self.describe(error)
                log(.warning, "server '\(config.name)': cannot connect: \(why)")
                markDown(why, upFor: 0)
            }
            await sleepUntilRetry()
        }
    }

    /// Records the outage and when the next attempt is (backoff doubles per failure in a row).
    private func markDown(_ why: String, upFor: Int64) {
        state.withLock { s in
            if case .stopped = s.phase { return }
            if upFor >= Self.stableNanos { s.consecutiveFailures = 0 }
            let delayMs = min(config.restartInitialMs << min(s.consecutiveFailures, 20), config.restartMaxMs)
            s.consecutiveFailures += 1
            s.backoffMs = delayMs
            s.lastError = why
            s.pid = nil
            s.phase = .down(reason: why, retryAtNanos: monotonicNanos() + Int64(delayMs) * 1_000_000)
        }
    }

    private func sleepUntilRetry() async {
        guard case .down(_, let at) = state.withLock({ $0.phase }) else { return }
        let wait = at - monotonicNanos()
        guard wait > 0 else { return }
        // Sleep, unless `refresh` or `stop` wakes us first.
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            state.withLock { $0.wake = c }
            Task {
                try? await Task.sleep(nanoseconds: UInt64(wait))
                self.wakeSupervisor()
            }
        }
    }

    private func wakeSupervisor() {
        state.withLock { s in
            defer { s.wake = nil }
            return s.wake
        }?.resume()
    }

    /// Starts the transport, runs `initialize`, lists the tools; the session is then ready.
    private func connect() async throws -> RPCSession {
        state.withLock { s in if case .stopped = s.phase {} else { s.phase = .connecting } }
        let session = RPCSession { [weak self] method, params in self?.notification(method, params) }
        let channel: any MCPChannel
        switch config.transport {
        case .stdio(let program, let arguments, let environment, let cwd):
            let stdio = try StdioChannel(program: program, arguments: arguments, environment: environment, workingDirectory: cwd,
                                         maxMessageBytes: config.maxMessageBytes, server: config.name, session: session, log: log)
            state.withLock { $0.pid = stdio.pid }
            channel = stdio
        case .http(let url, let headers):
            guard let httpClient else { throw DriverError(.internal, code: "internal", message: "no HTTP client") }
            channel = HTTPChannel(url: url, headers: headers, client: httpClient, maxMessageBytes: config.maxMessageBytes,
                                  server: config.name, session: session, log: log)
        }
        do {
            let deadline = CallDeadline(millisecondsFromNow: config.connectTimeoutMs)
            let result = try await withDeadline(deadline, "server '\(config.name)': initialize") {
                try await session.request("initialize", [
                    "protocolVersion": .string(Self.protocolVersion),
                    "capabilities": .object([:]),
                    "clientInfo": ["name": "nova-host-mcp-proxy", "version": "1.0.0"],
                ])
            }
            let version = result["protocolVersion"]?.stringValue ?? Self.protocolVersion
            (channel as? HTTPChannel)?.setProtocolVersion(version)
            session.notify("notifications/initialized")
            (channel as? HTTPChannel)?.openEventStream()
            let listed = try await withDeadline(CallDeadline(millisecondsFromNow: config.connectTimeoutMs), "server '\(config.name)': tools/list") {
                try await self.listTools(session)
            }
            let isStopped = state.withLock { s -> Bool in
                if case .stopped = s.phase { return true }
                s.phase = .ready(session)
                if s.connections > 0 { s.restarts += 1 }
                s.connections += 1
                s.serverInfo = result["serverInfo"]
                s.protocolVersion = version
                s.lastError = nil
                return false
            }
            if isStopped { session.close("stopped"); throw CancellationError() }
            adopt(listed)
            log(.info, "server '\(config.name)' ready (\(config.transportName), protocol \(version)): \(listed.tools.count) tool(s)")
            return session
        } catch {
            session.close("connection attempt failed")
            throw error
        }
    }

    // MARK: Tools

    private func notification(_ method: String, _ params: JSONValue?) {
        switch method {
        case "notifications/tools/list_changed":
            log(.info, "server '\(config.name)': tool list changed; listing again")
            relist()
        case "notifications/message":
            let text = params?["data"].map { $0.stringValue ?? $0.serialized() } ?? ""
            log(.debug, "server '\(config.name)' log: \(text.prefix(2000))")
        default:
            break  // progress, resource notifications: nothing the proxy offers
        }
    }

    /// Lists the tools again on the live connection; a failure is logged, the old list stays.
    func relist() {
        guard case .ready(let session) = state.withLock({ $0.phase }) else { return }
        Task {
            do {
                let listed = try await withDeadline(CallDeadline(millisecondsFromNow: config.connectTimeoutMs), "server '\(config.name)': tools/list") {
                    try await self.listTools(session)
                }
                adopt(listed)
            } catch {
                log(.warning, "server '\(config.name)': listing tools failed, the previous list stays: \(Self.describe(error))")
            }
        }
    }

    /// A reload: list again now when connected, else try to connect now. Either way a server that
    /// was failing starts its backoff again from the initial delay — also when the reload lands
    /// while an attempt is in flight, whose failure then counts as the first.
    func refresh() {
        let phase = state.withLock { s -> Phase in
            if case .ready = s.phase {} else { s.consecutiveFailures = 0 }
            return s.phase
        }
        switch phase {
        case .ready: relist()
        case .down: wakeSupervisor()
        case .connecting, .stopped: break
        }
    }

    private func adopt(_ listed: (tools: [String: RemoteTool], skipped: [String: String])) {
        let changed = state.withLock { s -> Bool in
            let before = s.tools.mapValues(\.descriptor)
            s.tools = listed.tools
            s.skipped = listed.skipped
            s.listedAt = monotonicNanos()
            return before != listed.tools.mapValues(\.descriptor)
        }
        for (name, why) in listed.skipped.sorted(by: { $0.key < $1.key }) {
            log(.warning, "server '\(config.name)': tool '\(name)' is not offered: \(why)")
        }
        if changed { toolsChanged() }
    }

    /// `tools/list`, every page, turned into namespaced descriptors.
    private func listTools(_ session: RPCSession) async throws -> (tools: [String: RemoteTool], skipped: [String: String]) {
        var tools: [String: RemoteTool] = [:]
        var skipped: [String: String] = [:]
        var cursor: JSONValue?
        var pages = 0
        repeat {
            let result = try await session.request("tools/list", cursor.map { ["cursor": $0] } ?? .object([:]))
            pages += 1
            for item in result["tools"]?.arrayValue ?? [] {
                guard let name = item["name"]?.stringValue else { continue }
                switch describeTool(item, remoteName: name) {
                case .success(let tool): tools[name] = tool
                case .failure(let why): skipped[name] = why.message
                }
            }
            cursor = result["nextCursor"].flatMap { $0.isNull ? nil : $0 }
        } while cursor != nil && pages < 100
        return (tools, skipped)
    }

    struct Skip: Error { let message: String }

    /// The host-side descriptor of a remote tool, or why it cannot be offered.
    private func describeTool(_ item: JSONValue, remoteName: String) -> Result<RemoteTool, Skip> {
        if let allowed = config.allowedTools, !allowed.contains(remoteName) { return .failure(Skip(message: "not in this server's \"tools\" list")) }
        let fullName = "\(config.name).\(remoteName)"
        // Tool names are dot-joined parts of [A-Za-z0-9_-] (nova_driver.h): MCP allows more.
        let parts = remoteName.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.contains(where: { $0.isEmpty || !$0.utf8.allSatisfy(isNamePartByte) }) else {
            return .failure(Skip(message: "its name has characters outside A-Z a-z 0-9 _ - ."))
        }
        guard fullName.utf8.count <= 128 else { return .failure(Skip(message: "'\(fullName)' is longer than 128 characters")) }
        var schema = item["inputSchema"] ?? ["type": "object"]
        guard schema.objectValue != nil else { return .failure(Skip(message: "its inputSchema is not an object")) }
        // MCP servers often leave out $schema; the host reads schemas as 2020-12.
        do { _ = try Schema.compile(schema) } catch {
            return .failure(Skip(message: "its inputSchema does not compile as JSON Schema 2020-12: \(error)"))
        }
        if schema["type"] == nil, var o = schema.objectValue { o["type"] = "object"; schema = .object(o) }
        var descriptor: [String: JSONValue] = [
            "name": .string(fullName),
            "description": .string(item["description"]?.stringValue ?? item["title"]?.stringValue ?? "\(remoteName) on MCP server \(config.name)"),
            "inputSchema": schema,
        ]
        var annotations: [String: JSONValue] = [:]
        if let title = item["annotations"]?["title"]?.stringValue ?? item["title"]?.stringValue { annotations["title"] = .string(title) }
        if config.trustAnnotations, let remote = item["annotations"]?.objectValue {
            for key in ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] {
                if let b = remote[key]?.boolValue { annotations[key] = .bool(b) }
            }
        } else {
            // Untrusted hints must not satisfy `read_only` rules: MCP's defaults for an unknown tool.
            annotations.merge(["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true]) { a, _ in a }
        }
        descriptor["annotations"] = .object(annotations)
        return .success(RemoteTool(remoteName: remoteName, descriptor: .object(descriptor)))
    }

    /// The descriptors of the tools the server offers now (the last list while it is down).
    var toolDescriptors: [JSONValue] {
        state.withLock { s in s.tools.keys.sorted().map { s.tools[$0]!.descriptor } }
    }

    // MARK: Calls

    /// Calls remote tool `remoteName`; the output is the MCP result (`content`,
    /// `structuredContent`) plus `text`, the text items joined.
    func call(_ remoteName: String, arguments: JSONValue, deadline: CallDeadline) async throws -> JSONValue {
        let (phase, known) = state.withLock { ($0.phase, $0.tools[remoteName] != nil) }
        let session: RPCSession
        switch phase {
        case .ready(let s): session = s
        case .connecting:
            throw DriverError.tool("server_unavailable", "MCP server '\(config.name)' is (re)connecting; try again shortly")
        case .down(let reason, let at):
            let seconds = Double(max(0, at - monotonicNanos()) / 1_000_000) / 1000
            throw DriverError.tool("server_unavailable",
                                   "MCP server '\(config.name)' is unavailable (\(reason)); next connection attempt in \(String(format: "%.1f", seconds)) s")
        case .stopped:
            throw DriverError.tool("server_unavailable", "MCP server '\(config.name)' is stopped (the driver instance is closing)")
        }
        guard known else { throw DriverError.unknownTool("\(config.name).\(remoteName)") }
        let what = "\(config.name).\(remoteName)"
        let result: JSONValue
        do {
            result = try await withDeadline(deadline, what) {
                try await session.request("tools/call", ["name": .string(remoteName), "arguments": arguments])
            }
        } catch let failure as RPCFailure {
            switch failure {
            case .remote(let code, let message, let data):
                var details: [String: JSONValue] = ["server": .string(config.name), "jsonrpc_code": .int(code)]
                if let data { details["data"] = data }
                throw DriverError.tool("remote_error", "MCP server '\(config.name)' refused \(remoteName): \(message) (JSON-RPC error \(code))", details: details)
            case .closed(let why):
                throw DriverError.tool("server_unavailable", "MCP server '\(config.name)' went away during the call to \(remoteName): \(why)")
            case .transport(let why):
                throw DriverError.tool("transport_error", "\(what): \(why)")
            }
        } catch is CancellationError {
            throw DriverError(.cancelled, code: "cancelled", message: "\(what): cancelled; the server was sent notifications/cancelled")
        }
        let content = result["content"]?.arrayValue ?? []
        let text = content.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined(separator: "\n")
        if result["isError"]?.boolValue == true {
            throw DriverError.tool("remote_tool_error", "\(what) reported an error: \(text.isEmpty ? "(no text)" : String(text.prefix(4000)))",
                                   details: ["server": .string(config.name), "content": .array(content)])
        }
        var output: [String: JSONValue] = ["content": .array(content), "text": .string(text)]
        if let structured = result["structuredContent"], !structured.isNull { output["structuredContent"] = structured }
        return .object(output)
    }

    // MARK: Status and stop

    /// What `mcp_proxy.servers` shows for this server (never headers, env values or secrets).
    var status: JSONValue {
        state.withLock { s in
            var o: [String: JSONValue] = ["name": .string(config.name), "transport": .string(config.transportName),
                                          "target": .string(config.displayTarget), "tools": .array(s.tools.keys.sorted().map { .string("\(config.name).\($0)") }),
                                          "restarts": .int(s.restarts), "trust_annotations": .bool(config.trustAnnotations)]
            switch s.phase {
            case .connecting: o["state"] = "connecting"
            case .ready: o["state"] = "ready"
            case .down(let reason, let at):
                o["state"] = "down"
                o["reason"] = .string(reason)
                o["retry_in_ms"] = .int(Int(max(0, at - monotonicNanos()) / 1_000_000))
                o["consecutive_failures"] = .int(s.consecutiveFailures)
                if let b = s.backoffMs { o["backoff_ms"] = .int(b) }
            case .stopped: o["state"] = "stopped"
            }
            if let pid = s.pid { o["pid"] = .int(Int(pid)) }
            if let v = s.protocolVersion { o["protocol_version"] = .string(v) }
            if let info = s.serverInfo { o["server_info"] = info }
            if let e = s.lastError { o["last_error"] = .string(e) }
            if !s.skipped.isEmpty { o["skipped_tools"] = .object(s.skipped.mapValues { .string($0) }) }
            return .object(o)
        }
    }

    /// Ends the connection for good (the instance is destroyed).
    func stop() {
        let (phase, supervisor) = state.withLock { s -> (Phase, Task<Void, Never>?) in
            defer { s.phase = .stopped }
            return (s.phase, s.supervisor)
        }
        if case .ready(let session) = phase { session.close("the proxy is stopping") }
        wakeSupervisor()
        supervisor?.cancel()
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DriverError { return e.message }
        if let e = error as? RPCFailure {
            switch e {
            case .closed(let why), .transport(let why): return why
            case .remote(let code, let message, _): return "\(message) (JSON-RPC error \(code))"
            }
        }
        return String(describing: error)
    }
}
