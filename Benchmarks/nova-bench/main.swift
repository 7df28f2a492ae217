// nova-bench: benchmarks, not tests. Each prints its figures and, where a peer exists, the
// peer's figure from the same run and the ratio. Usage: nova-bench [abi|policy|interpreter|pipeline|schema|episodes|shell|queue|agents|bus|all]
#if canImport(Glibc)
import Glibc
#endif

let which = CommandLine.arguments.dropFirst().first ?? "all"
let benches: [(String, () async throws -> Void)] = [
    ("abi", AbiBench.run),
    ("policy", PolicyBench.run),
    ("interpreter", InterpreterBench.run),
    ("pipeline", PipelineBench.run),
    ("reload", ReloadBench.run),
    ("schema", SchemaBench.run),
    ("drivers", DriverBench.run),
    ("episodes", EpisodeBench.run),
    ("shell", ShellBench.run),
    ("queue", QueueBench.run),
    ("agents", AgentBench.run),
    ("bus", BusBench.run),
]
var ran = false
for (name, run) in benches where which == "all" || which == name {
    print("== \(name)")
    do { try await run() } catch { print("  \(name) failed: \(error)") }
    ran = true
}
if !ran {
    print("usage: nova-bench [\(benches.map(\.0).joined(separator: "|"))|all]")
    exit(2)
}
