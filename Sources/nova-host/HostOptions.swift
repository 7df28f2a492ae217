import ArgumentParser
import Foundation
import Host
import JSON

/// Options every command that touches drivers, data or policy shares.
struct HostOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Drivers directory (default: $NOVA_DRIVERS_DIR or ./drivers).", valueName: "dir"))
    var drivers: String?

    @Option(help: ArgumentHelp("Data directory for episodes and state (default: $NOVA_DATA_DIR or ./.nova).", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("Policy profile (default: $NOVA_POLICY or ./configs/policy.default.json; none = deny all).", valueName: "file"))
    var policy: String?

    var paths: HostPaths { HostPaths.resolve(drivers: drivers, data: data, policy: policy) }

    /// Builds the host, turning a bad policy file into a usage error (exit 2).
    func makeHost() throws -> NovaHost {
        do { return try NovaHost(paths: paths) } catch {
            Output.error("invalid policy: \(error.message)")
            throw ExitCode(ExitStatus.invalid)
        }
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
    static func json(_ value: JSONValue) {
        print(value.serialized(pretty: true, sortedKeys: true))
    }
}
