// `nova-bench schema`: JSON Schema validation against the jsonschema-rs peer
// (Benchmarks/schema/peer_jsonschema_rs.py) on the same files, in three shapes (issue 15):
// the 1 KB request envelope, a deeply `$ref`'d schema with `unevaluatedProperties`
// (deep.schema.json / deep.json) and an array of 10,000 objects (array.schema.json /
// array.json); the last two are written by Benchmarks/schema/make_shapes.py. Every shape is
// timed as `isValid` on an already parsed document, as the peer times `is_valid` on an
// already loaded one.
//
//   swift build -c release --product nova-bench --scratch-path .build-schema-release
//   .build-schema-release/release/nova-bench schema [--iterations N] [--rounds R] [--no-peer] [--shape S]
//
// --iterations sets the envelope's count; the deep and array shapes run N/40 and N/2000.
// --shape envelope|deep|array times one shape only (e.g. under perf).
//
// The peer needs `pip install jsonschema-rs`; without it the Swift figures are still printed.
import Foundation
import JSON
import Schema

/// The schema benchmark.
enum SchemaBench {
    static func run() async throws {
        let args = Array(CommandLine.arguments.dropFirst(2))
        func option(_ name: String, _ def: Int) -> Int {
            if let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
            return def
        }
        let iterations = option("--iterations", 20_000)
        // --shape envelope|deep|array: time that shape only (to profile one with perf).
        let only = args.firstIndex(of: "--shape").flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil }
        if let only, !["envelope", "deep", "array"].contains(only) {
            print("  unknown --shape \(only): envelope, deep or array")
            return
        }
        let rounds = option("--rounds", 7)
        let dir = benchDirectory()
        let schemaURL = dir.appendingPathComponent("envelope.schema.json")
        let docURL = dir.appendingPathComponent("envelope.json")
        let docBytes = Array(try Data(contentsOf: docURL))
        let schemaJSON = try JSONValue.parse(Array(try Data(contentsOf: schemaURL)))
        let doc = try JSONValue.parse(docBytes)

        let compileStart = ContinuousClock.now
        let schema = try Schema.compile(schemaJSON)
        let compileTime = ContinuousClock.now - compileStart
        let result = schema.validate(doc)
        guard result.isValid else {
            print("  the benchmark document is invalid:\n\(result)")
            return
        }
        // An invalid variant (three errors) to time error reporting too.
        guard case .object(var bad) = doc else { return }
        bad["priority"] = "urgent"
        bad["deadline_ms"] = 0
        bad["principal"] = ["id": "", "role": "service"]
        let badDoc = JSONValue.object(bad)
        let badErrors = schema.validate(badDoc).errors.count

        print("  files: \(schemaURL.path) (\(try Data(contentsOf: schemaURL).count) B), \(docURL.path) (\(docBytes.count) B)")
        print("  compile (meta-schema check included): \(format(Double((compileTime / .microseconds(1)))))/schema")

        var sink = 0
        var rows: [ShapeRow] = []
        let noPeer = args.contains("--no-peer")
        if only == nil || only == "envelope" {
            let isValidUS = medianMicros(rounds: rounds, iterations: iterations) {
                if schema.isValid(doc) { sink &+= 1 }
            }
            let isValidCPU = lastCPU
            let validateUS = medianMicros(rounds: rounds, iterations: iterations) {
                sink &+= schema.validate(doc).errors.count
            }
            let validateCPU = lastCPU
            let parseUS = medianMicros(rounds: rounds, iterations: iterations) {
                if case .object(let o)? = try? JSONValue.parse(docBytes) { sink &+= o.count }
            }
            let parseCPU = lastCPU
            let parseAndValidateUS = medianMicros(rounds: rounds, iterations: iterations) {
                if let v = try? JSONValue.parse(docBytes), schema.isValid(v) { sink &+= 1 }
            }
            let parseAndValidateCPU = lastCPU
            let invalidUS = medianMicros(rounds: rounds, iterations: max(1, iterations / 4)) {
                sink &+= schema.validate(badDoc).errors.count
            }
            let invalidCPU = lastCPU
            print("  (median of \(rounds) rounds × \(iterations); wall clock, then this thread's CPU time)")
            print("  nova Schema isValid(doc):        \(format(isValidUS)) wall, \(format(isValidCPU)) cpu /validation")
            print("  nova Schema validate(doc):       \(format(validateUS)) wall, \(format(validateCPU)) cpu /validation (collects errors; valid doc)")
            print("  nova JSON parse(\(docBytes.count) B):        \(format(parseUS)) wall, \(format(parseCPU)) cpu /parse")
            print("  nova parse + isValid:            \(format(parseAndValidateUS)) wall, \(format(parseAndValidateCPU)) cpu /document")
            print("  nova validate(invalid doc):      \(format(invalidUS)) wall, \(format(invalidCPU)) cpu /validation (\(badErrors) errors with locations and messages)")

            var envelopePeer: (us: Double, cpu: Double, line: String)?
            if noPeer {
                print("  peer skipped (--no-peer)")
            } else if let peer = runPeer(dir: dir, schema: schemaURL, doc: docURL, iterations: iterations, rounds: rounds) {
                envelopePeer = peer
                print("  peer: \(peer.line)")
                print("  ratio jsonschema-rs / nova isValid:  \(String(format: "%.2f", peer.us / isValidUS))× wall, \(String(format: "%.2f", peer.cpu / isValidCPU))× cpu (above 1: nova is faster)")
                print("  ratio jsonschema-rs / nova validate: \(String(format: "%.2f", peer.us / validateUS))× wall, \(String(format: "%.2f", peer.cpu / validateCPU))× cpu")
            }

            // The three shapes side by side: nova isValid and the peer's is_valid, same run.
            rows.append(ShapeRow(name: "envelope, 1 KB", novaWall: isValidUS, novaCPU: isValidCPU, peer: envelopePeer))
        }
        for (name, label, divisor) in [("deep", "deep $ref chain + unevaluatedProperties", 40), ("array", "array of 10,000 objects", 2000)]
            where only == nil || only == name {
            let shapeSchemaURL = dir.appendingPathComponent("\(name).schema.json")
            let shapeDocURL = dir.appendingPathComponent("\(name).json")
            let shapeDocBytes = try Data(contentsOf: shapeDocURL)
            let shapeSchema = try Schema.compile(try JSONValue.parse(Array(try Data(contentsOf: shapeSchemaURL))))
            let shapeDoc = try JSONValue.parse(Array(shapeDocBytes))
            let check = shapeSchema.validate(shapeDoc)
            guard check.isValid else {
                print("  the \(name) benchmark document is invalid:\n\(check)")
                return
            }
            let n = max(1, iterations / divisor)
            let wall = medianMicros(rounds: rounds, iterations: n) {
                if shapeSchema.isValid(shapeDoc) { sink &+= 1 }
            }
            let cpu = lastCPU
            let peer = noPeer ? nil : runPeer(dir: dir, schema: shapeSchemaURL, doc: shapeDocURL, iterations: n, rounds: rounds)
            rows.append(ShapeRow(name: "\(label), \(shapeDocBytes.count / 1000) KB", novaWall: wall, novaCPU: cpu, peer: peer))
        }
        print("  isValid per document (median of \(rounds) rounds; wall clock / this thread's CPU time); ratio = jsonschema-rs ÷ nova, above 1: nova is faster")
        print("  " + "shape".padding(toLength: 52, withPad: " ", startingAt: 0) + "nova (wall / cpu)".padding(toLength: 26, withPad: " ", startingAt: 0)
              + "jsonschema-rs (wall / cpu)".padding(toLength: 28, withPad: " ", startingAt: 0) + "ratio (wall / cpu)")
        for r in rows {
            let nova = "\(format(r.novaWall)) / \(format(r.novaCPU))"
            let peer = r.peer.map { "\(format($0.us)) / \(format($0.cpu))" } ?? "not run"
            let ratio = r.peer.map { String(format: "%.2f× / %.2f×", $0.us / r.novaWall, $0.cpu / r.novaCPU) } ?? "-"
            print("  " + r.name.padding(toLength: 52, withPad: " ", startingAt: 0) + nova.padding(toLength: 26, withPad: " ", startingAt: 0)
                  + peer.padding(toLength: 28, withPad: " ", startingAt: 0) + ratio)
        }
        if sink == 42 { print("") }  // keeps the measured work observable
    }

    /// One line of the shapes table.
    struct ShapeRow {
        let name: String
        let novaWall: Double
        let novaCPU: Double
        let peer: (us: Double, cpu: Double, line: String)?
    }

    /// Benchmarks/schema, found from this file's path, the working directory, or
    /// `NOVA_SCHEMA_BENCH_DIR`.
    static func benchDirectory() -> URL {
        if let env = ProcessInfo.processInfo.environment["NOVA_SCHEMA_BENCH_DIR"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let fromSource = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("schema")
        if FileManager.default.fileExists(atPath: fromSource.appendingPathComponent("envelope.json").path) { return fromSource }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Benchmarks/schema")
    }

    /// Median µs per call of `body` over `rounds` rounds of `iterations` calls, by the wall
    /// clock; the thread's CPU time per call (median too) is recorded in `lastCPU`, because on
    /// a shared, loaded machine the wall clock mostly measures the other processes.
    nonisolated(unsafe) static var lastCPU = 0.0

    static func medianMicros(rounds: Int, iterations: Int, _ body: () -> Void) -> Double {
        for _ in 0..<min(iterations, 2_000) { body() }  // warm-up
        var wall: [Double] = []
        var cpu: [Double] = []
        for _ in 0..<max(1, rounds) {
            let c0 = threadCPUNanoseconds()
            let t0 = ContinuousClock.now
            for _ in 0..<iterations { body() }
            let d = ContinuousClock.now - t0
            let c1 = threadCPUNanoseconds()
            let ns = Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
            wall.append(ns / Double(iterations) / 1000)
            cpu.append(Double(c1 - c0) / Double(iterations) / 1000)
        }
        lastCPU = median(cpu)
        return median(wall)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func threadCPUNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func format(_ us: Double) -> String {
        us < 1 ? String(format: "%.0f ns", us * 1000) : String(format: "%.2f µs", us)
    }

    /// Runs the Python peer; nil (with a note) when Python or jsonschema-rs is missing.
    static func runPeer(dir: URL, schema: URL, doc: URL, iterations: Int, rounds: Int) -> (us: Double, cpu: Double, line: String)? {
        let python = ProcessInfo.processInfo.environment["NOVA_BENCH_PYTHON"] ?? "python3"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, dir.appendingPathComponent("peer_jsonschema_rs.py").path,
                       "--schema", schema.path, "--instance", doc.path,
                       "--iterations", String(iterations), "--rounds", String(rounds)]
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch {
            print("  peer not run: cannot start \(python): \(error)")
            return nil
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0,
              let last = text.split(separator: "\n").last(where: { $0.hasPrefix("PEER_US_PER_VALIDATION=") }),
              let us = Double(last.dropFirst("PEER_US_PER_VALIDATION=".count)) else {
            let msg = String(decoding: errData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            print("  peer not run (\(msg.isEmpty ? "exit \(p.terminationStatus)" : msg)); install it with: pip install jsonschema-rs")
            return nil
        }
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("jsonschema-rs") }).map(String.init) ?? "jsonschema-rs"
        let cpuLine = text.split(separator: "\n").last(where: { $0.hasPrefix("PEER_CPU_US_PER_VALIDATION=") })
        let cpu = cpuLine.flatMap { Double($0.dropFirst("PEER_CPU_US_PER_VALIDATION=".count)) } ?? us
        return (us, cpu, line)
    }
}
