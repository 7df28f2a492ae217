import ArgumentParser
import Host

/// Hidden `nova-host driver-runner`: the child process of a driver with `isolation: process`.
/// It speaks length-framed JSON with the host on fd 3; not for direct use.
struct DriverRunnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "driver-runner",
        abstract: "Run one driver library in a child process for the host (internal).",
        shouldDisplay: false)

    @Option(help: "The driver name the library must provide.") var name: String
    @Option(help: "The library to load.") var library: String

    func run() async throws {
        await DriverRunner.run(name: name, library: library)
    }
}
