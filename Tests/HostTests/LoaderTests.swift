import CHostSupport
import Foundation
import Testing
import Host
import JSON

@Suite("ABI negotiation")
struct NegotiationTests {
    func load(_ defines: [String], host: ABIVersion = .host) throws -> Result<NativeDriverLibrary, DriverLoadError> {
        let dir = Fixtures.tempDir("abi")
        let path = try Fixtures.buildVariant(into: dir, defines: defines)
        do { return .success(try NativeDriverLibrary(path: path, expectedName: "variant", hostVersion: host)) } catch { return .failure(error) }
    }

    @Test func sameVersionLoads() throws {
        let lib = try load([]).get()
        #expect(lib.abiVersion == ABIVersion(major: 1, minor: 0))
        #expect(lib.manifest.name == "variant")
    }

    @Test func olderDriverMinorLoadsInNewerHost() throws {
        let lib = try load([], host: ABIVersion(major: 1, minor: 3)).get()
        #expect(lib.abiVersion == ABIVersion(major: 1, minor: 0))
    }

    @Test func newerDriverMinorIsRefused() throws {
        guard case .failure(let e) = try load(["-DVARIANT_MINOR=5"]) else { Issue.record("loaded"); return }
        guard case .minorTooNew(let path, let driver, let host) = e else { Issue.record("wrong error \(e)"); return }
        #expect(driver == ABIVersion(major: 1, minor: 5) && host == ABIVersion.host)
        #expect(e.description == "\(path) speaks ABI 1.5, this host speaks \(ABIVersion.host): the driver needs a newer host")
    }

    @Test func otherMajorIsRefusedNamingBothVersionsAndFile() throws {
        guard case .failure(let e) = try load(["-DVARIANT_MAJOR=2"]) else { Issue.record("loaded"); return }
        guard case .majorMismatch(let path, _, _) = e else { Issue.record("wrong error \(e)"); return }
        #expect(path.hasSuffix("libnova_variant.so"))
        #expect(e.description == "\(path) speaks ABI 2.0, this host speaks \(ABIVersion.host): major versions differ; rebuild the driver against this host's nova_driver.h")
    }

    @Test func shortStructSizeIsRefused() throws {
        guard case .failure(let e) = try load(["-DVARIANT_SIZE=16"]) else { Issue.record("loaded"); return }
        guard case .structTooSmall(_, let size, let required) = e else { Issue.record("wrong error \(e)"); return }
        #expect(size == 16 && required == 64)
        #expect(e.description.contains("filled a driver table of 16 bytes; ABI 1.0 needs at least 64 (struct_size too small)"))
    }

    @Test func missingEntrySymbolIsRefused() throws {
        guard case .failure(let e) = try load(["-DNO_ENTRY"]) else { Issue.record("loaded"); return }
        guard case .missingEntrySymbol = e else { Issue.record("wrong error \(e)"); return }
        #expect(e.description.contains("does not export nova_driver_init"))
    }

    @Test func badManifestIsRefused() throws {
        guard case .failure(let e) = try load(["-DBAD_MANIFEST=\"{\\\"name\\\":\\\"variant\\\",\\\"version\\\":\\\"1\\\",\\\"tools\\\":[]}\""]) else { Issue.record("loaded"); return }
        #expect(e.description.hasSuffix("has an invalid manifest: tools must list at least one tool"))
        guard case .failure(let e2) = try load(["-DBAD_MANIFEST=\"not json\""]) else { Issue.record("loaded"); return }
        guard case .invalidManifest(_, let reason) = e2 else { Issue.record("wrong error \(e2)"); return }
        #expect(reason.hasPrefix("not JSON"))
    }

    @Test func manifestNameMustMatchFileName() throws {
        let dir = Fixtures.tempDir("abi")
        let path = try Fixtures.buildVariant(into: dir, file: "libnova_other.so")
        #expect(throws: DriverLoadError.nameMismatch(path: path, fileName: "other", manifestName: "variant")) {
            _ = try NativeDriverLibrary(path: path, expectedName: "other")
        }
    }
}

@Suite("Driver registry and loader")
struct RegistryTests {
    @Test func discoveryDoesNotOpenAndCorruptDriverFailsOnlyWhenUsed() async throws {
        let dir = Fixtures.tempDir("lazy")
        try Fixtures.buildEcho(into: dir)
        Fixtures.write("this is not an ELF file", to: dir + "/libnova_broken.so")
        chmod(dir + "/libnova_broken.so", 0o644)
        let registry = DriverRegistry(driversDirectory: dir)
        let before = registry.statuses()
        #expect(before.map(\.name) == ["broken", "echo"])
        #expect(before.allSatisfy { $0.state == "discovered" })
        // The good driver works although a broken one sits beside it.
        let (echo, _) = try await registry.resolve(toolId: "echo.echo")
        let r = try await echo.call(ToolCallRequest(tool: "echo", input: Array(#"{"a":1}"#.utf8)))
        #expect(r.json == ["a": 1])
        #expect(registry.statuses().first { $0.name == "broken" }?.state == "discovered")
        // Using the broken one fails with a specific error, and is reported.
        await #expect {
            _ = try await registry.driver(named: "broken")
        } throws: { e in
            guard case DriverLoadError.dlopenFailed(let path, _) = e else { return false }
            return path.hasSuffix("libnova_broken.so")
        }
        #expect(registry.statuses().first { $0.name == "broken" }?.state == "failed")
        #expect(registry.statuses().first { $0.name == "echo" }?.state == "loaded")
    }

    @Test func hundredConcurrentFirstUsesLoadOnce() async throws {
        let dir = Fixtures.tempDir("once")
        try Fixtures.buildEcho(into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        let outputs = try await withThrowingTaskGroup(of: JSONValue.self) { group in
            for i in 0..<100 {
                group.addTask {
                    let (d, _) = try await registry.resolve(toolId: "echo.echo")
                    return try await d.call(ToolCallRequest(tool: "echo", input: Array("{\"i\":\(i)}".utf8))).json
                }
            }
            var all: [JSONValue] = []
            for try await o in group { all.append(o) }
            return all
        }
        #expect(outputs.count == 100)
        #expect(Set(outputs.compactMap { $0["i"]?.intValue }) == Set(0..<100))
        #expect(registry.loadCount("echo") == 1)
    }

    @Test func cAndSwiftDriversInOneProcess() async throws {
        let dir = Fixtures.tempDir("mixed")
        try Fixtures.buildEcho(into: dir)
        try Fixtures.installText(into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        let (echo, _) = try await registry.resolve(toolId: "echo.echo")
        let (text, tool) = try await registry.resolve(toolId: "text.upper")
        #expect(tool.annotations.readOnlyHint)
        let a = try await echo.call(ToolCallRequest(tool: "echo", input: Array(#"{"x":"c"}"#.utf8)))
        let b = try await text.call(ToolCallRequest(tool: "upper", input: Array(#"{"text":"swift"}"#.utf8)))
        #expect(a.json == ["x": "c"])
        #expect(b.json == ["text": "SWIFT"])
        #expect(a.usage.tokens == 3)  // echo reports one token per 4 input bytes: 9 bytes → 3
        // Swift async path: answered later from a Swift task.
        let c = try await text.call(ToolCallRequest(tool: "delay", input: Array(#"{"text":"later","ms":5}"#.utf8)))
        #expect(c.json == ["text": "later"])
        // A Swift driver's thrown error crosses as a status, not a crash.
        await #expect(throws: ToolCallError.self) {
            _ = try await text.call(ToolCallRequest(tool: "upper", input: Array(#"{"nope":1}"#.utf8)))
        }
    }

    @Test func builtInDriversLookLikeFileDrivers() async throws {
        let dir = Fixtures.tempDir("builtin")
        try Fixtures.buildEcho(into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        // A built-in registered under a name wraps a native library here, but any ToolDriver works.
        registry.registerDriver("mirror") {
            let lib = try NativeDriverLibrary(path: dir + "/libnova_echo.so", expectedName: nil)
            return try lib.makeInstance()
        }
        let (d, t) = try await registry.resolve(toolId: "mirror.echo")
        #expect(t.name == "echo")
        #expect(try await d.call(ToolCallRequest(tool: "echo", input: Array("{}".utf8))).json == [:])
        #expect(registry.statuses().first { $0.name == "mirror" }?.origin == .builtin)
    }

    @Test func unknownDriverAndToolErrors() async throws {
        let registry = DriverRegistry(driversDirectory: Fixtures.tempDir("empty"))
        await #expect {
            _ = try await registry.resolve(toolId: "nope.x")
        } throws: { e in (e as? DriverLoadError)?.description.contains("no driver provides 'nope'") == true }
        await #expect {
            _ = try await registry.resolve(toolId: "nodot")
        } throws: { e in (e as? ToolCallError)?.kind == .unknownTool }
    }

    @Test func unsafeFilesAreRefused() async throws {
        let dir = Fixtures.tempDir("unsafe")
        let path = try Fixtures.buildEcho(into: dir)
        chmod(path, 0o666)
        let registry = DriverRegistry(driversDirectory: dir)
        await #expect {
            _ = try await registry.driver(named: "echo")
        } throws: { e in
            guard case DriverLoadError.unsafeFile(_, let reason) = e else { return false }
            return reason.contains("group- or world-writable (mode 0666)")
        }
        // A symlink escaping the drivers directory.
        let outside = Fixtures.tempDir("outside")
        try Fixtures.buildEcho(into: outside, file: "libnova_esc.so")
        let inside = Fixtures.tempDir("inside")
        try FileManager.default.createSymbolicLink(atPath: inside + "/libnova_esc.so", withDestinationPath: outside + "/libnova_esc.so")
        #expect {
            _ = try DriverDiscovery.checkSafeToLoad(path: inside + "/libnova_esc.so", driversDirectory: inside)
        } throws: { e in (e as? DriverLoadError)?.description.contains("outside the drivers directory") == true }
        // `..` in the path.
        #expect {
            _ = try DriverDiscovery.checkSafeToLoad(path: inside + "/../" + URL(fileURLWithPath: outside).lastPathComponent + "/libnova_esc.so", driversDirectory: inside)
        } throws: { e in (e as? DriverLoadError)?.description.contains("outside the drivers directory") == true }
        // A directory named like a driver is not a regular file.
        try FileManager.default.createDirectory(atPath: inside + "/libnova_dir.so", withIntermediateDirectories: false)
        chmod(inside + "/libnova_dir.so", 0o755)
        #expect {
            _ = try DriverDiscovery.checkSafeToLoad(path: inside + "/libnova_dir.so", driversDirectory: inside)
        } throws: { e in (e as? DriverLoadError)?.description.contains("not a regular file") == true }
    }
}

@Suite("Async calls, deadlines, cancel")
struct AsyncCallTests {
    func echo() async throws -> NativeDriverInstance {
        let dir = Fixtures.tempDir("async")
        try Fixtures.buildEcho(into: dir)
        return try await DriverRegistry(driversDirectory: dir).activeGeneration("echo").driver as! NativeDriverInstance
    }

    @Test func completionFromAnotherThread() async throws {
        let d = try await echo()
        let r = try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":20}"#.utf8)))
        #expect(r.json == ["slept_ms": 20])
        #expect(d.held == 0)
    }

    @Test func thousandCallsInFlightWithoutThousandHostThreads() async throws {
        let d = try await echo()
        let n = try await withThrowingTaskGroup(of: Int.self) { g in
            for _ in 0..<200 { g.addTask { try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":30}"#.utf8))).json["slept_ms"]?.intValue ?? 0 } }
            var sum = 0
            for try await v in g { sum += v }
            return sum
        }
        #expect(n == 200 * 30)
    }

    @Test func deadlineIsHonouredByTheDriver() async throws {
        let d = try await echo()
        let deadline = nova_monotonic_now() + 50_000_000
        await #expect {
            _ = try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":60000}"#.utf8), deadlineNanos: deadline))
        } throws: { e in
            guard let e = e as? ToolCallError else { return false }
            // The driver itself noticed (it answers before the host's grace period ends).
            return e.kind == .deadline && e.source == "driver" && e.message == "echo.sleep: deadline passed"
        }
        #expect(d.held == 0)
    }

    @Test func cancelReachesTheDriver() async throws {
        let d = try await echo()
        let task = Task { try await d.call(ToolCallRequest(tool: "sleep", input: Array(#"{"ms":60000}"#.utf8))) }
        // Wait for the state (the driver holds the call), not for a fixed time.
        var started = 0
        while d.held == 0 && started < 10_000 { try await Task.sleep(nanoseconds: 5_000_000); started += 5 }
        #expect(d.held == 1)
        task.cancel()
        await #expect(throws: ToolCallError.self) { _ = try await task.value }
        // The driver saw is_cancelled and completed: nothing is left in flight long before
        // the 60 s sleep would end.
        var waited = 0
        while d.held != 0 && waited < 10_000 { try await Task.sleep(nanoseconds: 5_000_000); waited += 5 }
        #expect(d.held == 0)
    }

    @Test func unknownToolIsRefusedByDriver() async throws {
        let d = try await echo()
        await #expect {
            _ = try await d.call(ToolCallRequest(tool: "nope", input: Array("{}".utf8)))
        } throws: { e in (e as? ToolCallError)?.kind == .unknownTool }
        let fail = await #expect(throws: ToolCallError.self) { _ = try await d.call(ToolCallRequest(tool: "fail", input: Array("{}".utf8))) }
        #expect(fail?.code == "echo_fail")
        #expect(d.held == 0)
    }
}

import DriverABI
func nova_monotonic_now() -> Int64 { nova_monotonic_ns() }
