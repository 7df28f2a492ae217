import CHostSupport
import Foundation
import Synchronization
import Testing
import Host
import JSON

/// Hot reload and process isolation (issue 6).
@Suite("Hot reload", .serialized)
struct ReloadTests {
    /// Builds echo at `version` elsewhere and renames it over the installed file (atomic).
    func install(echo version: String, into dir: String) throws {
        let staging = Fixtures.tempDir("stage")
        try Fixtures.buildEcho(into: staging, version: version)
        _ = rename(staging + "/libnova_echo.so", dir + "/libnova_echo.so")
    }

    func version(_ d: any ToolDriver) async throws -> String {
        try await d.call(ToolCallRequest(tool: "version", input: Array("{}".utf8))).json["version"]?.stringValue ?? "?"
    }

    @Test func reloadUnderLoadFailsNoCall() async throws {
        let dir = Fixtures.tempDir("reload")
        try install(echo: "1.0.0", into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        #expect(try await version(registry.driver(named: "echo")) == "1.0.0")
        final class Load: Sendable {
            let stop = Atomic<Bool>(false)
            let failures = Mutex<[String]>([])
            let seen = Mutex<Set<String>>([])
        }
        let load = Load()
        // Compile every version now (cached by Fixtures), not while eight workers wait.
        for v in ["2.0.0", "3.0.0", "4.0.0"] { try Fixtures.buildEcho(into: Fixtures.tempDir("warm"), version: v) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    while !load.stop.load(ordering: .relaxed) {
                        // A synchronous driver completes without suspending the task: yield so
                        // that eight tight loops cannot monopolise the two-thread pool.
                        await Task.yield()
                        do {
                            let (d, _) = try await registry.resolve(toolId: "echo.echo")
                            let input = "{\"w\":\(worker)}"
                            let r = try await d.call(ToolCallRequest(tool: "echo", input: Array(input.utf8)))
                            if r.json != (try JSONValue.parse(input)) { load.failures.withLock { $0.append("wrong answer") } }
                            let v = try await self.version(d)
                            _ = load.seen.withLock { $0.insert(v) }
                        } catch {
                            load.failures.withLock { $0.append("\(error)") }
                        }
                    }
                }
            }
            // Each reload happens while calls run, and only once the previous version has
            // answered calls (waits are bounded so a broken reload fails instead of hanging).
            func waitUntilSeen(_ v: String) async throws {
                for _ in 0..<3000 where !load.seen.withLock({ $0.contains(v) }) { try await Task.sleep(nanoseconds: 10_000_000) }
            }
            var previous = "1.0.0"
            for v in ["2.0.0", "3.0.0", "4.0.0"] {
                try await waitUntilSeen(previous)
                try install(echo: v, into: dir)
                let report = await registry.reload()
                #expect(report.replaced.count == 1, "\(report)")
                previous = v
            }
            try await waitUntilSeen("4.0.0")
            load.stop.store(true, ordering: .relaxed)
            try await group.waitForAll()
        }
        #expect(load.failures.withLock { $0 }.isEmpty)
        // Every generation answered calls under load; responses switched to the new version.
        #expect(load.seen.withLock { $0 } == ["1.0.0", "2.0.0", "3.0.0", "4.0.0"])
        #expect(try await version(registry.driver(named: "echo")) == "4.0.0")
        let status = registry.statuses().first { $0.name == "echo" }!
        #expect(status.generation != nil && status.retainedGenerations == 3)
        #expect(status.inFlight == 0)
        #expect(status.sha256?.count == 64)
        // Each generation was loaded from its own copy in .gen/.
        let copies = try FileManager.default.contentsOfDirectory(atPath: dir + "/.gen").filter { $0.hasSuffix(".so") }
        #expect(copies.count == 4)
    }

    /// Issue 11.5: compiled schemas belong to the generation. v1 of `variant.ping` takes `{}`,
    /// v2 requires `x`; after the reload `{}` must be refused (it was validated against v1's
    /// schema, cached under the tool's name, until the process restarted).
    @Test func aReloadThatChangesAnInputSchemaValidatesAgainstTheNewOne() async throws {
        func manifest(_ schema: String) -> String {
            let m = #"{"name":"variant","version":"0.1.0","description":"test","tools":[{"name":"ping","description":"pong","inputSchema":"# + schema + "}]}"
            return "-DMANIFEST_JSON=\"" + m.replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        let dir = Fixtures.tempDir("reload-schema")
        try Fixtures.buildVariant(into: dir, defines: [manifest(#"{"type":"object"}"#)])
        let runner = PlanRunner(registry: DriverRegistry(driversDirectory: dir), gate: AllowAllGate())
        let plan = try Plan.parse(JSONValue.parse(#"{"steps": [{"id": "a", "call": "variant.ping", "input": {}}]}"#))
        #expect(await runner.run(plan, inputs: [:], principal: "p", runId: RunId.make()).status == .succeeded)

        let staging = Fixtures.tempDir("stage")
        try Fixtures.buildVariant(into: staging, defines: [manifest(#"{"type":"object","required":["x"]}"#)])
        _ = rename(staging + "/libnova_variant.so", dir + "/libnova_variant.so")
        #expect(await runner.registry.reload().replaced.count == 1)

        let after = await runner.run(plan, inputs: [:], principal: "p", runId: RunId.make())
        #expect(after.status == .failed)
        #expect(after.steps.first?.reason?.contains("required") == true, "\(after.steps.first?.reason ?? "-")")
    }

    /// Issue 11.5: the host stops waiting at a deadline while the driver still holds the call;
    /// a reload then replaces the generation. `destroy` must wait for the driver's completion.
    @Test func aGenerationIsDestroyedOnlyAfterTheDriverCompletesACallTheHostGaveUpOn() async throws {
        let dir = Fixtures.tempDir("reload-held")
        let markers = dir + "/markers", release = dir + "/release"
        func defines(_ tag: Int) -> [String] {
            ["-DMARKER_FILE=\"\(markers)\"", "-DHOLD_CALLS_UNTIL=\"\(release)\"", "-DVARIANT_TAG=\(tag)"]
        }
        try Fixtures.buildVariant(into: dir, defines: defines(1))
        let registry = DriverRegistry(driversDirectory: dir)
        let (driver, _) = try await registry.resolve(toolId: "variant.ping")
        let first = try await registry.activeGeneration("variant")
        let held = try #require(first.driver as? NativeDriverInstance)
        // The host gives up at the deadline; the driver keeps the call.
        await #expect(throws: ToolCallError.self) {
            _ = try await driver.call(ToolCallRequest(tool: "ping", input: Array("{}".utf8), deadlineNanos: nova_monotonic_ns() + 50_000_000))
        }
        #expect(held.held == 1)

        let staging = Fixtures.tempDir("stage")
        try Fixtures.buildVariant(into: staging, defines: defines(2))
        _ = rename(staging + "/libnova_variant.so", dir + "/libnova_variant.so")
        #expect(await registry.reload().replaced.count == 1)
        // No lease is left on the old generation, but the driver still holds its call.
        let early = (try? String(contentsOfFile: markers, encoding: .utf8)) ?? ""
        #expect(!early.contains("destroy"), "destroyed while the driver still held a call: \(early)")

        #expect(FileManager.default.createFile(atPath: release, contents: Data()))
        var text = ""
        for _ in 0..<2000 {  // wait for the state (bounded, so a broken retire fails, not hangs)
            text = (try? String(contentsOfFile: markers, encoding: .utf8)) ?? ""
            if text.contains("shutdown") { break }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        #expect(text == "complete\ndestroy\nshutdown\n", "\(text)")
        #expect(held.held == 0)
    }

    @Test func wrongABIMajorKeepsTheOldOneServing() async throws {
        let dir = Fixtures.tempDir("reload-bad")
        try install(echo: "1.0.0", into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        #expect(try await version(registry.driver(named: "echo")) == "1.0.0")
        let staging = Fixtures.tempDir("stage")
        try Fixtures.buildVariant(into: staging, file: "libnova_echo.so", defines: ["-DVARIANT_MAJOR=2", "-DDRIVER_NAME=\"echo\""])
        _ = rename(staging + "/libnova_echo.so", dir + "/libnova_echo.so")
        let report = await registry.reload()
        #expect(report.failed.count == 1 && report.failed[0].contains("speaks ABI 2.0, this host speaks \(ABIVersion.host)"))
        #expect(try await version(registry.driver(named: "echo")) == "1.0.0")
        let status = registry.statuses().first { $0.name == "echo" }!
        #expect(status.state == "loaded" && status.reloadError?.contains("ABI 2.0") == true)
    }

    @Test func removalDrainsInFlightCalls() async throws {
        let dir = Fixtures.tempDir("reload-rm")
        try install(echo: "1.0.0", into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        let d = try await registry.driver(named: "echo")
        let slow = Task { try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":300}"#.utf8))) }
        try await Wait.untilInFlight(registry, "echo")
        try FileManager.default.removeItem(atPath: dir + "/libnova_echo.so")
        let report = await registry.reload()
        #expect(report.removed == ["echo"])
        // New calls are refused; the one in flight finishes on the old generation.
        await #expect { _ = try await d.call(ToolCallRequest(tool: "echo", input: Array("{}".utf8))) } throws: { e in
            (e as? ToolCallError)?.message.contains("was removed") == true
        }
        #expect(try await slow.value.json == ["slept_ms": 300])
        #expect(registry.statuses().first { $0.name == "echo" } == nil)
    }

    @Test func sighupTriggersAReload() async throws {
        let dir = Fixtures.tempDir("reload-hup")
        try install(echo: "1.0.0", into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        #expect(try await version(registry.driver(named: "echo")) == "1.0.0")
        final class Reports: Sendable { let list = Mutex<[ReloadReport]>([]) }
        let reports = Reports()
        let listener = ReloadOnSignal(registry: registry) { r in reports.list.withLock { $0.append(r) } }
        defer { listener.cancel() }
        try install(echo: "2.0.0", into: dir)
        kill(getpid(), SIGHUP)
        var waited = 0
        while reports.list.withLock({ $0.isEmpty }) && waited < 10_000 { try await Task.sleep(nanoseconds: 10_000_000); waited += 10 }
        #expect(reports.list.withLock { $0.first?.replaced.count } == 1)
        #expect(try await version(registry.driver(named: "echo")) == "2.0.0")
    }
}

@Suite("Process isolation", .serialized)
struct IsolationTests {
    func registry() throws -> DriverRegistry {
        let dir = Fixtures.tempDir("iso")
        try Fixtures.buildC(source: Fixtures.root + "/examples/drivers/c-crash/crash.c", into: dir, file: "libnova_crash.so")
        try Fixtures.buildEcho(into: dir)
        return DriverRegistry(driversDirectory: dir, settings: ["crash": DriverSettings(isolation: .process), "echo": DriverSettings(isolation: .inprocess)],
                              runnerCommand: [Fixtures.binDir + "/nova-host", "driver-runner"])
    }

    func call(_ r: DriverRegistry, _ tool: String, _ input: String = "{}") async throws -> JSONValue {
        let (d, _) = try await r.resolve(toolId: tool)
        return try await d.call(ToolCallRequest(tool: String(tool.split(separator: ".")[1]), input: Array(input.utf8))).json
    }

    @Test func crashingDriverDoesNotTakeTheHostDown() async throws {
        let r = try registry()
        #expect(try await call(r, "crash.ok", #"{"a":1}"#) == ["a": 1])
        for tool in ["crash.segv", "crash.abort"] {
            await #expect { _ = try await call(r, tool) } throws: { e in
                guard let e = e as? ToolCallError else { return false }
                return e.code == "driver_crashed" && e.message.contains("the host is unaffected")
            }
            // The host serves other drivers and, after a restart, this one.
            #expect(try await call(r, "echo.echo", #"{"b":2}"#) == ["b": 2])
            #expect(try await call(r, "crash.ok", #"{"c":3}"#) == ["c": 3])
        }
        let segv = r.statuses().first { $0.name == "crash" }!
        #expect(segv.isolation == .process && segv.state == "loaded")
    }

    @Test func repeatedCrashesQuarantine() async throws {
        let r = try registry()
        for _ in 0..<ProcessDriver.quarantineAfter {
            await #expect(throws: ToolCallError.self) { _ = try await call(r, "crash.exit") }
        }
        await #expect { _ = try await call(r, "crash.ok") } throws: { e in
            (e as? ToolCallError)?.code == "quarantined" && (e as? ToolCallError)?.message.contains("quarantined after 3 runner crashes") == true
        }
        #expect(r.statuses().first { $0.name == "crash" }?.error?.contains("quarantined") == true)
        #expect(try await call(r, "echo.echo", "{}") == [:])
        // Issue 10.10: an explicit reload lifts the quarantine, although the file is unchanged.
        let report = await r.reload()
        #expect(report.replaced.contains { $0.hasPrefix("crash:") && $0.hasSuffix("(quarantine lifted)") }, "\(report)")
        #expect(r.statuses().first { $0.name == "crash" }?.error == nil)
        _ = try await call(r, "crash.ok")
        #expect(await r.reload().unchanged.contains("crash"))
    }

    /// Issue 10.10: a driver nobody used yet is reported new once, when it appears, not by
    /// every reload; one that disappears before it was used is reported removed.
    @Test func neverLoadedDriversAreNewOnce() async throws {
        let dir = Fixtures.tempDir("reload-new")
        try Fixtures.buildEcho(into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        #expect(await registry.reload().added.isEmpty)  // echo was there at start-up
        try Fixtures.buildVariant(into: dir)
        #expect(await registry.reload().added == ["variant"])
        #expect(await registry.reload().added.isEmpty)
        try FileManager.default.removeItem(atPath: dir + "/libnova_variant.so")
        #expect(await registry.reload().removed == ["variant"])
    }

    /// Issue 10.6: a runner started from a thread that then exits (as a retired Dispatch worker
    /// does) must live on: PDEATHSIG follows the forking thread, so runners are spawned from
    /// one long-lived thread. And a call longer than 30 s completes.
    @Test func runnerOutlivesTheThreadThatStartedItAndServesLongCalls() async throws {
        let dir = Fixtures.tempDir("iso-long")
        try Fixtures.buildEcho(into: dir)
        let command = [Fixtures.binDir + "/nova-host", "driver-runner"]
        let started = Mutex<Result<ProcessDriver, DriverLoadError>?>(nil)
        let thread = Thread {
            started.withLock { $0 = Result { () throws(DriverLoadError) in
                try ProcessDriver.start(name: "echo", displayPath: dir + "/libnova_echo.so", libraryPath: dir + "/libnova_echo.so",
                                        config: .object([:]), runnerCommand: command)
            } }
        }
        thread.start()
        var driver: ProcessDriver?
        for _ in 0..<6000 where driver == nil {
            if let r = started.withLock({ $0 }) { driver = try r.get() } else { try await Task.sleep(for: .milliseconds(10)) }
        }
        let d = try #require(driver)
        // The starting thread has exited by now; a long call must still complete.
        let long = try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":35000}"#.utf8)))
        #expect(long.json == ["slept_ms": 35000])
    }

    /// Many calls at once over one runner: each caller gets its own answer (frames that arrive
    /// together are read together), a frame larger than the reader's buffer crosses whole both
    /// ways, a refused call and a cancelled one fail alone, and the runner keeps serving.
    @Test func concurrentCallsLargeFramesAndRefusalsInProcessMode() async throws {
        let dir = Fixtures.tempDir("iso-concurrent")
        try Fixtures.buildEcho(into: dir)
        let r = DriverRegistry(driversDirectory: dir, settings: ["echo": DriverSettings(isolation: .process)],
                               runnerCommand: [Fixtures.binDir + "/nova-host", "driver-runner"])
        let (d, _) = try await r.resolve(toolId: "echo.echo")
        let slow = Task { try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":60000}"#.utf8))) }
        try await Wait.untilInFlight(r, "echo")
        try await withThrowingTaskGroup(of: (Int, JSONValue).self) { group in
            for i in 0..<200 {
                group.addTask { (i, try await d.call(ToolCallRequest(tool: "echo", input: Array(#"{"i":\#(i)}"#.utf8))).json) }
            }
            for try await (i, out) in group { #expect(out == ["i": .int(i)]) }
        }
        let big = String(repeating: "x", count: 300_000)
        let res = try await d.call(ToolCallRequest(tool: "echo", input: Array(#"{"big":"\#(big)"}"#.utf8)))
        #expect(res.json == ["big": .string(big)] && res.usage.tokens == UInt64((big.utf8.count + 10 + 3) / 4))
        let refused = await #expect(throws: ToolCallError.self) { _ = try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":-1}"#.utf8))) }
        #expect(refused?.kind == .invalidArgument)
        slow.cancel()
        let cancelled = await #expect(throws: ToolCallError.self) { _ = try await slow.value }
        #expect(cancelled?.kind == .cancelled)
        #expect(try await d.call(ToolCallRequest(tool: "echo", input: Array(#"{"after":true}"#.utf8))).json == ["after": true])
    }

    /// Issue 15: the runner's reader and the host's side poll for the next frame for a
    /// bounded time after a call, then sleep. After a burst of calls, an idle runner and the
    /// host's reader thread use (almost) no CPU time: a second of idleness costs each of them
    /// well under a tenth of a second of CPU (a poller that never stopped would use all of it).
    @Test func anIdleRunnerAndItsReaderDoNotSpin() async throws {
        let dir = Fixtures.tempDir("iso-idle")
        try Fixtures.buildEcho(into: dir)
        let d = try ProcessDriver.start(name: "echo", displayPath: dir + "/libnova_echo.so", libraryPath: dir + "/libnova_echo.so",
                                        config: .object([:]), runnerCommand: [Fixtures.binDir + "/nova-host", "driver-runner"])
        defer { d.stopAndWait() }
        for i in 0..<2000 {  // sequential calls: the polling path
            #expect(try await d.call(ToolCallRequest(tool: "echo", input: Array(#"{"i":\#(i)}"#.utf8))).json == ["i": .int(i)])
        }
        // The runner is the child whose command line names this test's directory; the reader
        // thread is this process's thread named after the driver.
        let runner = try #require(CPUTime.process { $0.contains("driver-runner") && $0.contains(dir) })
        let reader = try #require(CPUTime.thread(named: "nova-rd-echo"))
        try await Task.sleep(for: .milliseconds(100))  // past the bounded polls
        let runnerBefore = try #require(CPUTime.ticks(runner)), readerBefore = try #require(CPUTime.ticks(reader))
        try await Task.sleep(for: .seconds(1))
        let runnerIdle = try #require(CPUTime.ticks(runner)) - runnerBefore, readerIdle = try #require(CPUTime.ticks(reader)) - readerBefore
        let tick = sysconf(Int32(_SC_CLK_TCK))
        #expect(runnerIdle * 10 < tick, "the idle runner used \(runnerIdle) of \(tick) ticks in a second")
        #expect(readerIdle * 10 < tick, "the idle reader thread used \(readerIdle) of \(tick) ticks in a second")
        // And it still answers.
        #expect(try await d.call(ToolCallRequest(tool: "echo", input: Array(#"{"after":1}"#.utf8))).json == ["after": 1])
    }

    @Test func processModeKeepsABISemantics() async throws {
        let dir = Fixtures.tempDir("iso-echo")
        try Fixtures.buildEcho(into: dir)
        let r = DriverRegistry(driversDirectory: dir, settings: ["echo": DriverSettings(isolation: .process)],
                               runnerCommand: [Fixtures.binDir + "/nova-host", "driver-runner"])
        let (d, _) = try await r.resolve(toolId: "echo.echo")
        let res = try await d.call(ToolCallRequest(tool: "echo", input: Array(#"{"x":"yz"}"#.utf8)))
        #expect(res.json == ["x": "yz"] && res.usage.tokens == 3)  // usage crosses the process boundary
        // Async completion and deadline.
        #expect(try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":20}"#.utf8))).json == ["slept_ms": 20])
        await #expect { _ = try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":60000}"#.utf8), deadlineNanos: nova_monotonic_now() + 50_000_000)) } throws: { e in
            (e as? ToolCallError)?.kind == .deadline && (e as? ToolCallError)?.source == "driver"
        }
        // Cancel reaches the runner.
        let t = Task { try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":60000}"#.utf8))) }
        try await Wait.untilInFlight(r, "echo")
        t.cancel()
        await #expect(throws: ToolCallError.self) { _ = try await t.value }
        let fail = await #expect(throws: ToolCallError.self) { _ = try await d.call(ToolCallRequest(tool: "fail", input: Array("{}".utf8))) }
        #expect(fail?.code == "echo_fail")
    }
}

/// CPU time (user + system, in clock ticks) of processes and threads, from /proc.
enum CPUTime {
    /// The `stat` file of the first process whose command line (arguments joined by spaces)
    /// matches `matches`.
    static func process(_ matches: (String) -> Bool) -> String? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(entry) != nil {
            guard let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let command = String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            if matches(command) { return "/proc/\(entry)/stat" }
        }
        return nil
    }

    /// The `stat` file of this process's thread named `name` (names are cut to 15 bytes).
    static func thread(named name: String) -> String? {
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            if comm.trimmingCharacters(in: .whitespacesAndNewlines) == name { return "/proc/\(getpid())/task/\(task)/stat" }
        }
        return nil
    }

    /// utime + stime of a `stat` file (fields 14 and 15; the command, field 2, may hold spaces,
    /// so count after its closing parenthesis).
    static func ticks(_ statFile: String) -> Int? {
        guard let stat = try? String(contentsOfFile: statFile, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }
}
