import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `POST /v1/drivers/reload`: rescans the drivers directory through
    /// `DriverRegistry.reload()` (hot reload: changed drivers get a new generation while calls
    /// in flight finish on the old one; a driver that fails to load keeps the old one serving).
    func reloadDrivers(context: ServerContext) async throws -> Response {
        let report = await host.registry.reload()
        context.logger.channel(.systemLog).notice("drivers reloaded", metadata: ["report": .string(report.description)])
        func list(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }
        await host.audit("driver.reload", detail: ["added": list(report.added), "replaced": list(report.replaced), "removed": list(report.removed),
                                                   "failed": list(report.failed)])
        return JSONIO.response(["added": list(report.added), "replaced": list(report.replaced), "removed": list(report.removed),
                                "failed": list(report.failed), "unchanged": list(report.unchanged),
                                "refreshed": list(report.refreshed)])
    }
}
