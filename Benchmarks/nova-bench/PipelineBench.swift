import CHostSupport
import Foundation
import Episodes
import Host
import JSON
#if canImport(Glibc)
import Glibc
#endif

/// One-step tool runs through the run pipeline and the run manager, without HTTP: what a
/// `POST /tools/echo.echo` costs beyond the HTTP server. Durable episodes in a data directory
/// under `NOVA_BENCH_DATA` (default the working directory: a disk, as the server bench uses).
/// Prints runs/s and the process's CPU per run for 1 and 32 concurrent callers.
enum PipelineBench {
    static func run() async throws {
        let candidates = [".build/release", "drivers"]
        guard let drivers = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/libnova_echo.so") }) else {
            print("  c-echo driver not found (build it: make bench)"); return
        }
        let parent = ProcessInfo.processInfo.environment["NOVA_BENCH_DATA"] ?? FileManager.default.currentDirectoryPath
        let dir = parent + "/.nova-bench-pipeline-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = #"{"roles": {"user": {}}, "principals": {"bench": "user"}, "rules": [{"id": "echo", "effect": "allow", "roles": ["user"], "tools": ["echo.*"]}]}"#
        try policy.write(toFile: dir + "/policy.json", atomically: true, encoding: .utf8)
        let host = try NovaHost(paths: HostPaths.resolve(drivers: drivers, data: dir + "/data", policy: dir + "/policy.json"),
                                episodes: await EpisodeLog.open(dataDirectory: dir + "/data"))
        let runs = RunManager(host: host)
        let plan = try Plan.parse(["name": "tool:echo.echo", "steps": [["id": "call", "call": "echo.echo", "input": ["text": "hi"], "timeout_ms": 10_000]]])
        let submission = RunSubmission(plan: plan, principal: "bench", role: "user", parallelism: 1, origin: "bench")
        @Sendable func one() async throws {
            let request = try await host.pipeline.prepare(submission)
            let snap = try await runs.execute(request)
            precondition(snap.record?.status == .succeeded, "bench run failed")
        }
        for _ in 0..<200 { try await one() }
        // The episode body: built as a JSONValue and encoded, or encoded from the record.
        let sample = try await runs.execute(try await host.pipeline.prepare(submission))
        if let record = sample.record {
            let viaJSON = try EpisodeFormat.encodedBytes(body: record.json, runId: record.runId)
            let direct = try EpisodeFormat.encodedBytes(members: record.episodeMembers, runId: record.runId)
            precondition(viaJSON == direct, "the two encodings differ")
            let a = Measure.nsPerOp(rounds: 7, iterations: 2000) { _ = try? EpisodeFormat.encodedBytes(body: record.json, runId: record.runId) }
            let b = Measure.nsPerOp(rounds: 7, iterations: 2000) { _ = try? EpisodeFormat.encodedBytes(members: record.episodeMembers, runId: record.runId) }
            print("  episode of a one-step run (\(viaJSON.count) bytes), encode + SHA-256: from the record's JSONValue \(Measure.fmt(a)), from the record directly \(Measure.fmt(b))")
        }
        print("  one-step echo.echo runs (prepare + execute + durable episode, no HTTP), data in \(parent):")
        let counts = ProcessInfo.processInfo.environment["NOVA_BENCH_CALLERS"].map { $0.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } } ?? [1, 32]
        let scale = max(1, ProcessInfo.processInfo.environment["NOVA_BENCH_SCALE"].flatMap { Int($0) } ?? 1)
        for callers in counts {
            var rates: [Double] = [], cpus: [Double] = []
            let perCaller = max(200, 1500 / callers) * scale
            for _ in 0..<3 {
                let c0 = cpuMicros(), t0 = nova_monotonic_ns()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<callers { group.addTask { for _ in 0..<perCaller { try await one() } } }
                    try await group.waitForAll()
                }
                let n = Double(callers * perCaller)
                rates.append(n * 1e9 / Double(nova_monotonic_ns() - t0))
                cpus.append((cpuMicros() - c0) / n)
            }
            print("    \(callers) caller(s): \(Int(Measure.median(rates))) runs/s, CPU per run \((Measure.median(cpus) * 10).rounded() / 10) µs (median of 3)")
        }
        await runs.shutdown(grace: .seconds(5))
    }

    /// User + system CPU of the process so far, in µs.
    static func cpuMicros() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec)
    }
}
