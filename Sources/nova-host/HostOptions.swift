import ArgumentParser
import Foundation
import Host
import JSON
import Logging

/// Options every command that touches drivers, data or policy shares.
struct HostOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Drivers directory (default: $NOVA_DRIVERS_DIR or ./drivers).", valueName: "dir"))
    var drivers: String?

    @Option(help: ArgumentHelp("Data directory for episodes and state (default: $NOVA_DATA_DIR or ./.nova).", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("Policy profile (default: $NOVA_POLICY or ./configs/policy.default.json; none = deny all).", valueName: "file"))
    var policy: String?

    @Option(name: .customLong("driver-config"), help: ArgumentHelp("Per-driver settings: isolation and create config (default: $NOVA_DRIVER_CONFIG or ./configs/drivers.json if present).", valueName: "file"))
    var driverConfig: String?

    @Option(help: ArgumentHelp(StoreOption.help, valueName: "url"))
    var store: String?

    @Option(help: ArgumentHelp("Templates directory, imported into the store as template versions (default: $NOVA_TEMPLATES_DIR or ./templates).", valueName: "dir"))
    var templates: String?

    var paths: HostPaths {
        var p = HostPaths.resolve(drivers: drivers, data: data, policy: policy, driverConfig: driverConfig)
        if let templates { p.templatesDirectory = templates }
        return p
    }

    /// Builds the host, turning a bad policy file into a usage error (exit 2). With
    /// `withData`, opens the data directory too (episodes, index, persisted policy state) and
    /// the store: `--store`, else `$NOVA_STORE`, else `configuredStore` (the host config's).
    func makeHost(withData: Bool = false, configuredStore: String? = nil) async throws -> NovaHost {
        let paths = self.paths
        var log: EpisodeLog?
        if withData {
            do { log = try await EpisodeLog.open(dataDirectory: paths.dataDirectory, store: try await StoreOption.open(store, configured: configuredStore)) } catch {
                Output.error("cannot open the store (data directory \(paths.dataDirectory)): \(error)")
                throw ExitCode(ExitStatus.runFailed)
            }
            if case .failure(let e) = log!.openIndexRepair { Output.error("warning: \(e)") }
        }
        do { return try NovaHost(paths: paths, episodes: log) } catch {
            Output.error("invalid configuration: \(error.message)")
            throw ExitCode(ExitStatus.invalid)
        }
    }
}

extension HostOptions {
    /// Registers the host's built-in tools (`memory.*`, `agents.*`, `state.*`, `bus.*`,
    /// `approvals.*`) as a server or worker has them, so that a plan using them checks out here
    /// too; returns the agent service over the store (nil without one).
    @discardableResult
    static func builtIns(_ nova: NovaHost) -> AgentService? {
        nova.registerApprovalTools()
        guard let store = nova.episodes?.store, let agents = store.agentStore, let queue = store.jobQueue else { return nil }
        let service = AgentService(store: agents, queue: queue, host: nova)
        service.registerTools()
        if let bus = store.messageBus { service.registerBusTools(BusService(bus: bus)) }
        return service
    }
}

/// Printing helpers: results to stdout, diagnostics to stderr.
enum Output {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
    }
    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
    /// The `--log-level` of the server commands; exits 2 on an unknown level.
    static func logLevel(_ text: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: text) else {
            error("--log-level must be one of trace, debug, info, notice, warning, error, critical")
            throw ExitCode(ExitStatus.invalid)
        }
        return level
    }

    static func json(_ value: JSONValue) {
        print(value.serialized(pretty: true, sortedKeys: true))
    }
}
