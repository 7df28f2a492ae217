import CHostSupport
import DriverABI
import Foundation
import Host
import JSON

/// Process isolation overhead per call (goal ≤ 20 µs) and reload latency (SIGHUP → new
/// generation serving).
enum ReloadBench {
    static func run() async throws {
        let source = "examples/drivers/c-echo/echo.c"
        guard FileManager.default.fileExists(atPath: source) else { print("  run from the package root"); return }
        let dir = NSTemporaryDirectory() + "nova-reload-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func build(_ version: String, to path: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["cc", "-std=c11", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I", "Sources/DriverABI/include",
                           "-DECHO_VERSION=\"\(version)\"", "-o", path, source, "-lpthread"]
            try p.run(); p.waitUntilExit()
            chmod(path, 0o644)
        }
        try build("1.0.0", to: dir + "/libnova_echo.so")
        let input = Array(#"{"message":"hello","n":42}"#.utf8)

        let inproc = DriverRegistry(driversDirectory: dir)
        let proc = DriverRegistry(driversDirectory: dir, settings: ["echo": DriverSettings(isolation: .process)])
        let a = try await inproc.driver(named: "echo"), b = try await proc.driver(named: "echo")
        var inSamples: [Double] = [], outSamples: [Double] = []
        for _ in 0..<5 {  // alternate so that machine noise hits both
            inSamples.append(try await Measure.nsPerOpAsync(rounds: 1, iterations: 20_000) { _ = try await a.call(ToolCallRequest(tool: "echo", input: input)) })
            outSamples.append(try await Measure.nsPerOpAsync(rounds: 1, iterations: 5_000) { _ = try await b.call(ToolCallRequest(tool: "echo", input: input)) })
        }
        let i = Measure.median(inSamples), o = Measure.median(outSamples)
        print("  echo.echo through the registry (median of 5 alternating rounds):")
        print("    in process        \(Measure.fmt(i)) per call")
        print("    process isolation \(Measure.fmt(o)) per call   (+\(Measure.fmt(o - i)) per call; goal ≤ 20 µs)")

        // 16 callers at once: wall time per call over all of them (frames of different calls
        // share reads and wake-ups here, so this is throughput, not one call's latency).
        func concurrent(_ d: any ToolDriver, calls: Int) async throws -> Double {
            let t0 = nova_monotonic_ns()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask { for _ in 0..<(calls / 16) { _ = try await d.call(ToolCallRequest(tool: "echo", input: input)) } }
                }
                try await group.waitForAll()
            }
            return Double(nova_monotonic_ns() - t0) / Double(calls / 16 * 16)
        }
        var inConcurrent: [Double] = [], outConcurrent: [Double] = []
        for _ in 0..<5 {
            inConcurrent.append(try await concurrent(a, calls: 32_000))
            outConcurrent.append(try await concurrent(b, calls: 8_000))
        }
        let ic = Measure.median(inConcurrent), oc = Measure.median(outConcurrent)
        print("  16 concurrent callers, wall time per call (median of 5 alternating rounds):")
        print("    in process        \(Measure.fmt(ic)) per call")
        print("    process isolation \(Measure.fmt(oc)) per call   (+\(Measure.fmt(oc - ic)) per call)")

        // Reload latency: replace the file, rescan, until the new generation serves.
        var reloads: [Double] = []
        for n in 2...8 {
            try build("\(n).0.0", to: dir + "/stage.so.tmp")
            rename(dir + "/stage.so.tmp", dir + "/libnova_echo.so")
            let t0 = nova_monotonic_ns()
            let report = await inproc.reload()
            let v = try await a.call(ToolCallRequest(tool: "version", input: Array("{}".utf8))).outputJSON()["version"]?.stringValue
            reloads.append(Double(nova_monotonic_ns() - t0))
            precondition(v == "\(n).0.0", "reload did not switch: \(report)")
        }
        print("    reload (rescan, hash, copy to .gen, dlopen, negotiate, swap) until the new version answers: median \(Measure.fmt(Measure.median(reloads))) over \(reloads.count) reloads")
        try? FileManager.default.removeItem(atPath: dir)
    }
}
