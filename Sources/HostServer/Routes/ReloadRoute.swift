import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `POST /v1/drivers/reload`: rescans the drivers directory through
    /// `DriverRegistry.reload()` once hot reload (issue 6) lands; until then 501.
    func reloadDrivers(context: ServerContext) async throws -> Response {
        throw APIError(.notImplemented, "not_implemented",
                       "driver hot reload is not available in this build (DriverRegistry.reload() is missing)")
    }
}
