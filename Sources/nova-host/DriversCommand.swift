import ArgumentParser
import Host
import JSON

/// `nova-host drivers list|inspect`.
struct DriversCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drivers",
        abstract: "Show drivers: discovered in the drivers directory, loaded, or failed.",
        subcommands: [List.self, Inspect.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List drivers without loading them (add --load to open each and show its tools).")
        @Flag(help: "Open every driver to show ABI version, tools and load errors.") var load = false
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try host.makeHost()
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
            print("NAME".padding(toLength: 12, withPad: " ", startingAt: 0) + "STATE       ABI   TOOLS  PATH")
            for s in statuses {
                let abi = s.abiVersion?.description ?? "-"
                let tools = s.manifest.map { String($0.tools.count) } ?? "-"
                print(s.name.padding(toLength: 12, withPad: " ", startingAt: 0) + s.state.padding(toLength: 12, withPad: " ", startingAt: 0)
                      + abi.padding(toLength: 6, withPad: " ", startingAt: 0) + tools.padding(toLength: 7, withPad: " ", startingAt: 0) + (s.path ?? "(built in)"))
                if let e = s.error { print("    error: \(e)") }
            }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load one driver and show its manifest and tools.")
        @Argument(help: "The driver name (e.g. echo).") var name: String
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try host.makeHost()
            do {
                let driver = try await nova.registry.driver(named: name)
                let status = nova.registry.statuses().first { $0.name == name }
                if json {
                    var o = status.map(DriverJSON.status)?.objectValue ?? [:]
                    o["manifest"] = driver.manifest.raw
                    Output.json(.object(o))
                    return
                }
                let m = driver.manifest
                print("\(m.name) \(m.version) — \(m.description)")
                if let s = status {
                    print("  state: \(s.state)   ABI: \(s.abiVersion?.description ?? "n/a")   path: \(s.path ?? "(built in)")")
                }
                print("  concurrency: \(m.concurrency.rawValue)   permissions: network=\(m.permissions.network) filesystem=\(m.permissions.filesystem) process=\(m.permissions.process)")
                for t in m.tools {
                    var hints: [String] = []
                    if t.annotations.readOnlyHint { hints.append("read-only") }
                    if t.annotations.destructiveHint { hints.append("destructive") }
                    if t.annotations.idempotentHint { hints.append("idempotent") }
                    if t.annotations.openWorldHint { hints.append("open-world") }
                    print("  \(m.name).\(t.name)  [\(hints.joined(separator: ", "))]\n      \(t.description)")
                }
            } catch {
                if json { Output.json(["name": .string(name), "state": "failed", "error": .string("\(error)")]) } else { Output.error("\(error)") }
                throw ExitCode(ExitStatus.runFailed)
            }
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
        if let m = s.manifest {
            o["version"] = .string(m.version)
            o["tools"] = .array(m.tools.map { .string("\(m.name).\($0.name)") })
        }
        return .object(o)
    }
}
