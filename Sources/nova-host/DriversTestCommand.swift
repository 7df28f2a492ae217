import ArgumentParser
import DriverConformance
import Foundation
import Host
import JSON

extension DriversCommand {
    /// `nova-host drivers test PATH.so…`: the conformance harness for driver authors.
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check driver libraries against the ABI as the host uses it (for driver authors).",
            discussion: """
                Each library is loaded in a child process (a crash or hang is reported, naming the check that \
                was running) and checked for: ABI negotiation and the manifest (schemas/manifest.schema.json, \
                name = file name); every tool's "examples" (input passes inputSchema; the call succeeds with an \
                output that passes outputSchema, or fails with the example's "error" code); how calls complete \
                (exactly once, inside `call` or later from another thread); 16 concurrent calls when the driver \
                declares "thread_safe"; a call with a 1 ms deadline and a cancelled call (the driver must still \
                complete both); destroy and shutdown after the last completion.

                Findings: ✔ passed · ✘ failed (breaks the ABI or the manifest's own declarations) · ! warning · \
                · information. Each failure and warning says what to change.

                Exit codes: 0 no failures · 1 a check failed, or the driver crashed or hung · 2 bad arguments.
                """)

        @Argument(help: "Driver libraries (.so) to check.") var paths: [String]
        @Option(help: "Instance configuration (a JSON object) passed to create.") var config: String?
        @Option(help: "Read the instance configuration from this JSON file.") var configFile: String?
        @Option(help: "Seconds a call may take before the driver counts as not answering.") var callTimeout: Int = 10
        @Option(help: "Seconds the whole check of one library may take before it counts as hung.") var timeout: Int = 120
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: .hidden) var child = false

        func validate() throws {
            guard callTimeout > 0, timeout > 0 else { throw ValidationError("--call-timeout and --timeout must be positive") }
            if config != nil && configFile != nil { throw ValidationError("give --config or --config-file, not both") }
        }

        func run() async throws {
            let configuration = try loadConfig()
            if child {
                // In the child: one JSON line per event on stdout, flushed as it goes.
                let suite = ConformanceSuite(path: paths[0], config: configuration, callTimeoutNanos: Int64(callTimeout) * 1_000_000_000)
                await suite.run(starting: { Self.emit(["starting": .string($0)]) }, found: { Self.emit($0.json) })
                return
            }
            var reports: [JSONValue] = []
            var failed = false
            for path in paths {
                let (findings, crash): ([ConformanceFinding], String?)
                if FileManager.default.fileExists(atPath: path) {
                    // dlopen searches the library path for a name without a slash: pass the file.
                    (findings, crash) = try checkInChild(path: URL(fileURLWithPath: path).standardizedFileURL.path, config: configuration)
                } else {
                    (findings, crash) = ([.init(check: "load", outcome: .failed, detail: "no such file: \(path)")], nil)
                }
                let failures = findings.filter { $0.outcome == .failed }.count + (crash == nil ? 0 : 1)
                failed = failed || failures > 0
                if json {
                    var o: [String: JSONValue] = ["path": .string(path), "findings": .array(findings.map(\.json)), "failed": .int(failures)]
                    if let crash { o["crash"] = .string(crash) }
                    reports.append(.object(o))
                } else {
                    printReport(path: path, findings: findings, crash: crash)
                }
            }
            if json { Output.json(.array(reports)) }
            if failed { throw ExitCode(ExitStatus.runFailed) }
        }

        func loadConfig() throws -> JSONValue {
            var text = config
            if let configFile {
                guard let data = FileManager.default.contents(atPath: configFile) else { throw ValidationError("cannot read \(configFile)") }
                text = String(decoding: data, as: UTF8.self)
            }
            guard let text else { return .object([:]) }
            guard let value = try? JSONValue.parse(text), value.objectValue != nil else {
                throw ValidationError("the instance configuration must be a JSON object")
            }
            return value
        }

        /// Runs the suite in `nova-host drivers test --child PATH`, collecting its findings; the
        /// second value says how the child ended if it did not end normally.
        func checkInChild(path: String, config: JSONValue) throws -> ([ConformanceFinding], String?) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ProcessDriver.defaultRunnerExecutable())
            process.arguments = ["drivers", "test", "--child", "--call-timeout", String(callTimeout), "--config", config.serialized(), path]
            let out = Pipe()
            process.standardOutput = out
            var environment = ProcessInfo.processInfo.environment
            environment["SWIFT_BACKTRACE"] = "enable=no"
            process.environment = environment
            try process.run()
            let killer = DispatchWorkItem { if process.isRunning { process.terminate(); kill(process.processIdentifier, SIGKILL) } }
            DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(timeout), execute: killer)
            var findings: [ConformanceFinding] = []
            var current = "start"
            var buffer = [UInt8]()
            let handle = out.fileHandleForReading
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(contentsOf: chunk)
                while let newline = buffer.firstIndex(of: 10) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    guard let value = try? JSONValue.parse(line) else { continue }
                    if let starting = value["starting"]?.stringValue {
                        current = starting
                        if !json, isatty(2) != 0 { FileHandle.standardError.write(Data("  … \(starting)\n".utf8)) }
                    } else if let finding = ConformanceFinding(json: value) {
                        findings.append(finding)
                    }
                }
            }
            process.waitUntilExit()
            killer.cancel()
            switch (process.terminationReason, process.terminationStatus) {
            case (.exit, 0): return (findings, nil)
            case (.uncaughtSignal, SIGKILL), (.uncaughtSignal, SIGTERM):
                return (findings, "no answer within \(timeout) s: the driver hung during '\(current)'")
            case (.uncaughtSignal, let signal):
                return (findings, "the driver crashed during '\(current)' (signal \(signal))")
            case (_, let status):
                return (findings, "the check process exited with status \(status) during '\(current)'")
            }
        }

        func printReport(path: String, findings: [ConformanceFinding], crash: String?) {
            print(path)
            func mark(_ o: ConformanceFinding.Outcome) -> String {
                switch o {
                case .passed: "✔"
                case .failed: "✘"
                case .warning: "!"
                case .info: "·"
                }
            }
            for f in findings {
                print("  \(mark(f.outcome)) \(f.check.padding(toLength: 12, withPad: " ", startingAt: 0)) \(f.detail)")
                if let hint = f.hint, f.outcome != .passed { print("      → \(hint)") }
            }
            if let crash { print("  ✘ \("process".padding(toLength: 12, withPad: " ", startingAt: 0)) \(crash)") }
            let count = { (o: ConformanceFinding.Outcome) in findings.filter { $0.outcome == o }.count }
            print("  \(count(.passed)) passed, \(count(.warning)) warning(s), \(count(.failed) + (crash == nil ? 0 : 1)) failed")
        }

        static func emit(_ value: JSONValue) {
            FileHandle.standardOutput.write(Data((value.serialized() + "\n").utf8))
        }
    }
}
