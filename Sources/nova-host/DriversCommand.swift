import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Host
import JSON

/// `nova-host drivers list|inspect`.
struct DriversCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drivers",
        abstract: "Show drivers: discovered in the drivers directory, loaded, or failed.",
        subcommands: [List.self, Inspect.self, Reload.self, Test.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List drivers without loading them (add --load to open each and show its tools).")
        @Flag(help: "Open every driver to show ABI version, tools and load errors.") var load = false
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try await host.makeHost()
            if load {
                for s in nova.registry.statuses() { _ = try? await nova.registry.driver(named: s.name) }
            }
            let statuses = nova.registry.statuses()
            if json {
                Output.json(.object(["drivers_directory": .string(nova.paths.driversDirectory), "drivers": .array(statuses.map(DriverJSON.status))]))
                return
            }
            if statuses.isEmpty {
                Output.note("no drivers in \(nova.paths.driversDirectory) (run `make drivers` to build and install them)")
                return
            }
            func col(_ s: String, _ w: Int) -> String { s.padding(toLength: w, withPad: " ", startingAt: 0) }
            print(col("NAME", 12) + col("STATE", 12) + col("ABI", 6) + col("TOOLS", 7) + col("GEN", 5) + col("SHA256", 14) + col("IN-FLIGHT", 11) + col("ISOLATION", 11) + "PATH")
            for s in statuses {
                print(col(s.name, 12) + col(s.state, 12) + col(s.abiVersion?.description ?? "-", 6) + col(s.manifest.map { String($0.tools.count) } ?? "-", 7)
                      + col(s.generation.map(String.init) ?? "-", 5) + col(s.sha256.map { String($0.prefix(12)) } ?? "-", 14)
                      + col(String(s.inFlight), 11) + col(s.isolation.rawValue, 11) + (s.path ?? "(built in)"))
                if let t = s.loadedAt { print("    loaded at \(t)\(s.retainedGenerations > 0 ? ", \(s.retainedGenerations) old generation(s) retained" : "")") }
                if let e = s.error { print("    error: \(e)") }
                if let e = s.reloadError { print("    last reload failed (old version serving): \(e)") }
            }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one driver's manifest and tools, and whether an instance can be created.",
            discussion: """
                The manifest comes from the driver's `describe`, which needs no configuration: a driver such as \
                postgres (no DSN yet) or graphql (no endpoint yet) can be inspected before it is configured; the \
                output then says that the instance is not configured and why. A configured instance that lists \
                tools of its own (driver ABI 1.1, e.g. mcp_proxy's mcp_proxy.<server>.<tool>) shows those tools.

                Exit codes: 0 shown (configured or not) · 1 the library cannot be loaded.
                """)
        @Argument(help: "The driver name (e.g. echo).") var name: String
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try await host.makeHost()
            var m: DriverManifest
            do { m = try await nova.registry.describe(named: name).manifest } catch {
                if json { Output.json(["name": .string(name), "state": "failed", "error": .string("\(error)")]) } else { Output.error("\(error)") }
                throw ExitCode(ExitStatus.runFailed)
            }
            // Now try to create the instance, as a first call would.
            var instanceError: String?
            // A configured instance may list tools of its own (ABI 1.1, e.g. mcp_proxy): show those.
            do { m = try await nova.registry.driver(named: name).manifest } catch { instanceError = "\(error)" }
            let status = nova.registry.statuses().first { $0.name == name }
            if json {
                var o = status.map(DriverJSON.status)?.objectValue ?? ["name": .string(name)]
                o["manifest"] = m.raw
                o["instance"] = instanceError.map { ["configured": false, "error": .string($0)] } ?? ["configured": true]
                Output.json(.object(o))
                return
            }
            print("\(m.name) \(m.version) — \(m.description)")
            if let s = status {
                print("  state: \(s.state)   ABI: \(s.abiVersion?.description ?? "n/a")   path: \(s.path ?? "(built in)")")
            }
            if let instanceError { print("  instance: not configured — \(instanceError)") } else { print("  instance: configured") }
            print("  concurrency: \(m.concurrency.rawValue)   permissions: network=\(m.permissions.network) filesystem=\(m.permissions.filesystem) process=\(m.permissions.process)")
            for t in m.tools {
                var hints: [String] = []
                if t.annotations.readOnlyHint { hints.append("read-only") }
                if t.annotations.destructiveHint { hints.append("destructive") }
                if t.annotations.idempotentHint { hints.append("idempotent") }
                if t.annotations.openWorldHint { hints.append("open-world") }
                print("  \(m.name).\(t.name)  [\(hints.joined(separator: ", "))]\n      \(t.description)")
            }
        }
    }
}

extension DriversCommand {
    /// `nova-host drivers reload`: asks a running `nova-host serve` to rescan (SIGHUP).
    struct Reload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tell a running `nova-host serve` (found by <data>/serve.pid) to rescan the drivers directory and re-read the policy.",
            discussion: """
                Same as `kill -HUP <pid>`: drivers as POST /v1/drivers/reload, the policy as POST /v1/policy/reload \
                (a policy file that cannot be used leaves the previous profile in use; GET /v1/policy shows reload_error). \
                A one-shot command such as `run` always sees the files as they are.
                """)
        @OptionGroup var host: HostOptions

        func run() async throws {
            let data = host.paths.dataDirectory
            guard let pid = ServePidFile.read(dataDirectory: data) else {
                Output.error("no running nova-host serve found for data directory \(data) (no live pid in \(ServePidFile.path(dataDirectory: data)))")
                throw ExitCode(ExitStatus.runFailed)
            }
            guard kill(pid, SIGHUP) == 0 else {
                Output.error("cannot signal pid \(pid): \(String(cString: strerror(errno)))")
                throw ExitCode(ExitStatus.runFailed)
            }
            print("sent SIGHUP to nova-host serve (pid \(pid)); see `nova-host drivers list`, GET /v1/drivers and GET /v1/policy for the result")
        }
    }
}

enum DriverJSON {
    static func status(_ s: DriverStatus) -> JSONValue {
        var o: [String: JSONValue] = ["name": .string(s.name), "origin": .string(s.origin.rawValue), "state": .string(s.state),
                                      "in_flight": .int(s.inFlight)]
        if let p = s.path { o["path"] = .string(p) }
        if let e = s.error { o["error"] = .string(e) }
        if let a = s.abiVersion { o["abi"] = .string(a.description) }
        if let g = s.generation { o["generation"] = .int(g) }
        if let h = s.sha256 { o["sha256"] = .string(h) }
        if let t = s.loadedAt { o["loaded_at"] = .string(t) }
        if let e = s.reloadError { o["reload_error"] = .string(e) }
        o["retained_generations"] = .int(s.retainedGenerations)
        o["isolation"] = .string(s.isolation.rawValue)
        if let m = s.manifest {
            o["version"] = .string(m.version)
            o["tools"] = .array(m.tools.map { .string("\(m.name).\($0.name)") })
        }
        return .object(o)
    }
}
