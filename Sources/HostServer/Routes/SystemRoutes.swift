import Foundation
import Host
import Hummingbird
import JSON
import MCP
import NIOCore

extension NovaServer {
    /// `GET /health` (public liveness), `GET /ready` (store and drivers directory usable; status
    /// only without credentials if configured public),
    /// `GET /version` (public), `GET /metrics` (Prometheus; public if configured).
    func addSystemRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/health") { _, _ in
            JSONIO.response(["status": "ok"])
        }

        on(router, .get, "/version") { _, _ in
            JSONIO.response([
                "name": "nova-host", "version": .string(NovaVersion.string), "abi": .string(ABIVersion.host.description),
                "mcp_protocol_versions": .array(Version.supported.sorted().map { .string($0) }),
            ])
        }

        on(router, .get, "/ready") { [self] _, context in
            // Public readiness (`ready.public`) tells an anonymous caller the status only: the
            // checks name paths and store errors, which stay for callers with credentials.
            let detailed: Bool
            do { _ = try context.requireCaller(); detailed = true } catch { guard config.readyPublic else { throw error }; detailed = false }
            let checks = await readiness()
            let ready = checks.values.allSatisfy { $0 == "ok" }
            guard detailed else {
                if ready { return JSONIO.response(["status": "ready"]) }
                throw APIError(.serviceUnavailable, "not_ready", "not ready")
            }
            let details = JSONValue.object(checks.mapValues { .string($0) })
            if ready { return JSONIO.response(["status": "ready", "checks": details]) }
            throw APIError(.serviceUnavailable, "not_ready", "not ready: " + checks.filter { $0.value != "ok" }.map { "\($0.key): \($0.value)" }.sorted().joined(separator: "; "),
                           extra: ["checks": details])
        }

        on(router, .get, "/metrics") { [self] _, context in
            if !config.metricsPublic { _ = try context.requireCaller() }
            let loaded = host.registry.statuses().filter { $0.state == "loaded" }.count
            var text = metrics.render(runsInFlight: runs.inFlightCount, driversLoaded: loaded, mcpSessions: mcp.sessionCount)
            if let bus {
                var stats: [(String, SubscriptionStats)] = []
                for sub in (try? await bus.bus.listSubscriptions(topic: nil))?.prefix(1_000) ?? [] {
                    if let s = try? await bus.bus.subscriptionStats(sub.id) { stats.append((sub.id, s)) }
                }
                text += metrics.renderBus(bus.counters, stats)
            }
            if let store = host.episodes?.store {
                text += await storeGauges(store)
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
    }

    /// The store's KPI gauges for `/metrics` (families whose counts cannot be read are left out).
    func storeGauges(_ store: any HostStore) async -> [UInt8] {
        var runs: [String: Int] = [:]
        for status in ["succeeded", "failed", "denied", "cancelled", "interrupted"] {
            if let n = try? await store.countEpisodes(status: status, principal: nil) { runs[status] = n }
        }
        var jobs: [String: Int]?
        if let queue = store.jobQueue {
            var counts: [String: Int] = [:]
            for state in JobState.allCases { if let n = try? await queue.countJobs(JobFilter(states: [state])) { counts[state.rawValue] = n } }
            jobs = counts
        }
        var agents: [String: Int]?
        if let agentStore = store.agentStore {
            var counts: [String: Int] = [:]
            for status in AgentStatus.allCases where status != .deleted {
                if let n = try? await agentStore.countAgents(AgentFilter(status: status)) { counts[status.rawValue] = n }
            }
            agents = counts
        }
        return metrics.renderStore(runs: runs, jobs: jobs, agents: agents)
    }

    /// Readiness checks: `ok` or what is wrong, by name.
    func readiness() async -> [String: String] {
        var checks: [String: String] = [:]
        if let episodes = host.episodes {
            do { _ = try await episodes.store.countEpisodes(status: nil, principal: nil); checks["store"] = "ok" } catch {
                checks["store"] = "the store does not answer: \(error)"
            }
        } else {
            checks["store"] = "no data directory is open"
        }
        var isDir: ObjCBool = false
        let dir = host.paths.driversDirectory
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue, FileManager.default.isReadableFile(atPath: dir) {
            checks["drivers"] = "ok"
        } else {
            checks["drivers"] = "the drivers directory \(dir) is missing or unreadable"
        }
        checks["runs"] = runs.isAccepting ? "ok" : "shutting down"
        return checks
    }
}
