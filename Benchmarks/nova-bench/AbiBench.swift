import DriverABI
import DriverKit
import Foundation
import Host
import JSON

/// A DriverKit driver that returns its input: measures DriverKit's own conversion cost.
struct BenchEcho: NovaDriver {
    static let manifest: JSONValue = [
        "name": "benchecho", "version": "1.0.0", "description": "bench",
        "tools": [["name": "echo", "description": "echo", "inputSchema": ["type": "object"]]],
    ]
    init(configuration: JSONValue) throws {}
    func callNow(_ call: ToolCall) throws -> ToolOutput? { .rawJSON(call.inputBytes) }
}

/// ABI round trip of a 200-byte JSON envelope: raw C vtable (c-echo) vs DriverKit, same run.
enum AbiBench {
    nonisolated(unsafe) static var sink = 0

    static func run() async throws {
        var envelope = #"{"request_id":"req-0001","tool":"echo.echo","principal":"svc","input":{"message":"hello","n":42,"tags":["a","b"]},"pad":""}"#
        envelope = envelope.replacingOccurrences(of: #""pad":"""#, with: "\"pad\":\"" + String(repeating: "x", count: 200 - envelope.utf8.count) + "\"")
        let input = Array(envelope.utf8)
        precondition(input.count == 200)

        // Host services that do nothing but look at the output (no Swift on the C path).
        let complete: @convention(c) (UnsafeMutableRawPointer?, UInt64, Int32, nova_buf) -> Void = { _, _, _, out in AbiBench.sink &+= out.len }
        let usage: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafePointer<nova_usage>?) -> Void = { _, _, _ in }
        let cancelled: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> Int32 = { _, _ in 0 }
        let log: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, nova_buf) -> Void = { _, _, _, _ in }
        let api = UnsafeMutablePointer<nova_host_api>.allocate(capacity: 1)
        api.initialize(to: nova_host_api(struct_size: UInt32(MemoryLayout<nova_host_api>.size), abi_major: 1, abi_minor: 0,
                                         host_ctx: nil, log: log, complete: complete, is_cancelled: cancelled, report_usage: usage, tools_changed: nil))

        func table(_ initFn: (UnsafePointer<nova_host_api>, UnsafeMutablePointer<nova_driver>) -> Int32) -> (nova_driver, OpaquePointer) {
            var t = nova_driver()
            t.struct_size = UInt32(MemoryLayout<nova_driver>.size); t.abi_major = 1; t.abi_minor = 0
            precondition(initFn(api, &t) == 0)
            var inst: OpaquePointer?
            var err = [CChar](repeating: 0, count: 256)
            let cfg = Array("{}".utf8)
            _ = cfg.withUnsafeBufferPointer { c in t.create(t.driver_ctx, nova_buf(ptr: c.baseAddress, len: 2), &inst, &err, 256) }
            return (t, inst!)
        }

        // The C driver, opened from the release build or drivers/.
        let candidates = [ProcessInfo.processInfo.environment["NOVA_ECHO_SO"], ".build/release/libnova_echo.so", "drivers/libnova_echo.so"].compactMap { $0 }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }),
              let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL), let sym = dlsym(handle, "nova_driver_init") else {
            print("  c-echo driver not found (build it: make bench)"); return
        }
        let cInit = unsafeBitCast(sym, to: nova_driver_init_fn.self)
        let (cTable, cInst) = table { cInit($0, $1) }
        let (sTable, sInst) = table { DriverExport.initialize(BenchEcho.self, host: UnsafeRawPointer($0), table: UnsafeMutableRawPointer($1)) }

        let tool = Array("echo".utf8)
        func callOnce(_ t: nova_driver, _ inst: OpaquePointer) {
            tool.withUnsafeBufferPointer { tb in
                input.withUnsafeBufferPointer { ib in
                    var c = nova_call(struct_size: UInt32(MemoryLayout<nova_call>.size), abi_major: 1, abi_minor: 0, call_id: 1,
                                      tool: nova_buf(ptr: tb.baseAddress, len: tb.count), input: nova_buf(ptr: ib.baseAddress, len: ib.count), deadline_ns: 0)
                    _ = t.call(inst, &c)
                }
            }
        }
        let n = 200_000
        var raw = 0.0, kit = 0.0
        var rawSamples: [Double] = [], kitSamples: [Double] = []
        for _ in 0..<5 {  // alternate the two so that noise hits both
            rawSamples.append(Measure.nsPerOp(rounds: 1, iterations: n) { callOnce(cTable, cInst) })
            kitSamples.append(Measure.nsPerOp(rounds: 1, iterations: n) { callOnce(sTable, sInst) })
        }
        raw = Measure.median(rawSamples); kit = Measure.median(kitSamples)
        print("  200-byte JSON envelope, one call through the function table (median of 5 × \(n)):")
        print("    raw C vtable (c-echo, echo)        \(Measure.fmt(raw)) per call")
        print("    DriverKit (Swift, bytes→ToolCall→bytes) \(Measure.fmt(kit)) per call")
        print("    ratio DriverKit / raw C            \((kit / raw * 100).rounded() / 100)×   (goal: DriverKit ≤ 1 µs per call)")

        // The full host path: registry → NativeDriverInstance → CallTable → continuation.
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let registry = DriverRegistry(driversDirectory: dir)
        let echo = try await registry.driver(named: "echo")
        let req = ToolCallRequest(tool: "echo", input: input)
        let host = try await Measure.nsPerOpAsync(rounds: 5, iterations: 50_000) { _ = try await echo.call(req) }
        print("    full host call path (async, call table, usage) \(Measure.fmt(host)) per call")
    }
}
