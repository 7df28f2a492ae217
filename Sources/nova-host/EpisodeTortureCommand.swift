import ArgumentParser
import Host

/// Hidden `nova-host episodes _torture --data DIR --count N`: the child process of the episode
/// kill test (Tests/EpisodeTests/KillTest.swift). Opens DIR with the normal start-up recovery,
/// prints `READY`, then writes episodes and prints `ACK <run_id>` after each durable write.
struct EpisodeTortureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_torture",
        abstract: "Write episodes in a loop, acknowledging each durable write (kill-test helper).",
        shouldDisplay: false)

    @Option(help: "Data directory.") var data: String
    @Option(help: "Episodes to write before exiting.") var count: Int = 1_000_000
    @Option(help: "Concurrent writer threads.") var writers: Int = 2

    func run() async throws {
        try EpisodeKillTestWorker.run(dataDir: data, count: count, writers: writers)
    }
}
