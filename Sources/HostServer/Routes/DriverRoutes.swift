import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /v1/drivers`, `GET /v1/drivers/{name}`, `POST /v1/drivers/reload` (admin roles).
    func addDriverRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/drivers") { [self] _, context in
            let caller = try context.requireCaller()
            var o: [String: JSONValue] = ["drivers": .array(host.registry.statuses().map { DriverViews.status($0, showPath: caller.isAdmin) })]
            if caller.isAdmin { o["drivers_directory"] = .string(host.paths.driversDirectory) }
            return JSONIO.response(.object(o))
        }

        on(router, .get, "/v1/drivers/{name}") { [self] _, context in
            let caller = try context.requireCaller()
            let name = context.parameters.get("name") ?? ""
            guard DriverManifest.isValidName(name), host.registry.statuses().contains(where: { $0.name == name }) else {
                throw APIError.notFound("no driver '\(name)' in the drivers directory")
            }
            // Load it (first use) to show its manifest; a failed load is reported in `state`/`error`.
            let driver = try? await host.registry.driver(named: name)
            guard let status = host.registry.statuses().first(where: { $0.name == name }) else {
                throw APIError.notFound("no driver '\(name)' in the drivers directory")
            }
            var o = DriverViews.status(status, showPath: caller.isAdmin).objectValue ?? [:]
            if let m = driver?.manifest {
                o["description"] = .string(m.description)
                o["concurrency"] = .string(m.concurrency.rawValue)
                o["permissions"] = ["network": .bool(m.permissions.network), "filesystem": .bool(m.permissions.filesystem),
                                    "process": .bool(m.permissions.process)]
                o["tools"] = .array(m.tools.map { ToolViews.tool(id: "\(m.name).\($0.name)", driver: m.name, version: m.version, descriptor: $0, allowed: nil) })
            }
            return JSONIO.response(.object(o))
        }

        on(router, .post, "/v1/drivers/reload") { [self] _, context in
            let caller = try context.requireCaller()
            guard caller.isAdmin else {
                throw APIError(.forbidden, "forbidden", "reloading drivers needs an admin role (\(config.adminRoles.joined(separator: ", ")))")
            }
            return try await reloadDrivers(context: context)
        }
    }
}

/// JSON views of drivers.
enum DriverViews {
    static func status(_ s: DriverStatus, showPath: Bool) -> JSONValue {
        var o: [String: JSONValue] = ["name": .string(s.name), "origin": .string(s.origin.rawValue), "state": .string(s.state),
                                      "in_flight": .int(s.inFlight)]
        if showPath, let p = s.path { o["path"] = .string(p) }
        if let e = s.error { o["error"] = .string(e) }
        // A failed reload leaves the old generation serving (state stays `loaded`): say so.
        o["reload_error"] = s.reloadError.map { .string($0) } ?? .null
        if let a = s.abiVersion { o["abi"] = .string(a.description) }
        if let m = s.manifest {
            o["version"] = .string(m.version)
            o["tools"] = .array(m.tools.map { .string("\(m.name).\($0.name)") })
        }
        return .object(o)
    }
}

/// JSON views of tools.
enum ToolViews {
    static func tool(id: String, driver: String, version: String, descriptor t: ToolDescriptor, allowed: Bool?) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "driver": .string(driver), "driver_version": .string(version), "name": .string(t.name),
            "description": .string(t.description), "input_schema": t.inputSchema,
            "annotations": ["readOnlyHint": .bool(t.annotations.readOnlyHint), "destructiveHint": .bool(t.annotations.destructiveHint),
                            "idempotentHint": .bool(t.annotations.idempotentHint), "openWorldHint": .bool(t.annotations.openWorldHint)],
        ]
        if let out = t.outputSchema { o["output_schema"] = out }
        if let allowed { o["allowed"] = .bool(allowed) }
        return .object(o)
    }
}
