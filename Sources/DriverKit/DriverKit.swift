internal import DriverABI
import JSON
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A nova-host driver written in Swift: conform a type to `NovaDriver`, then export it with one
/// function:
///
/// ```swift
/// @_cdecl("nova_driver_init")
/// public func novaDriverInit(_ host: UnsafeRawPointer?, _ table: UnsafeMutableRawPointer?) -> Int32 {
///     DriverExport.initialize(MyDriver.self, host: host, table: table)
/// }
/// ```
///
/// DriverKit negotiates the ABI version, serves the manifest, converts JSON, maps thrown errors
/// to ABI status codes (a Swift error never crosses the ABI) and completes async calls.
public protocol NovaDriver: Sendable {
    /// The manifest: name, version, description, concurrency, permissions, tools.
    static var manifest: JSONValue { get }
    /// Creates an instance from the host's configuration for this driver (`{}` if none).
    init(configuration: JSONValue) throws
    /// Answers a call synchronously on the host's thread, or returns nil to answer through
    /// `call(_:)` on a Swift task. Use it only for work that never blocks.
    func callNow(_ call: ToolCall) throws -> ToolOutput?
    /// Answers a call asynchronously. Honour `Task.isCancelled` and `call.deadlineNanos`.
    func call(_ call: ToolCall) async throws -> ToolOutput
    /// The host destroys the instance (after its last completion): stop the threads, tasks and
    /// child processes it started. Default: nothing.
    func close()
}

extension NovaDriver {
    public func callNow(_ call: ToolCall) throws -> ToolOutput? { nil }
    public func call(_ call: ToolCall) async throws -> ToolOutput {
        throw DriverError.unknownTool(call.tool)
    }
    public func close() {}
}

/// A driver whose instances list tools of their own, which may change while they live (ABI 1.1
/// `describe_instance`, `refresh`, `tools_changed`): e.g. a proxy for remote tool servers.
/// DriverKit negotiates ABI 1.1 for it; under a 1.0 host its instances show the manifest's tools.
public protocol NovaDynamicToolsDriver: NovaDriver {
    /// Called once, right after `init(configuration:)`: `host` tells the host that
    /// `instanceTools()` changed and logs, from any thread (also the driver's own), under any
    /// lock of the driver.
    func attach(_ host: InstanceHost)
    /// The instance's tools now: an array of MCP tool descriptors, replacing the manifest's
    /// `tools` (checked by the host like a manifest). Must not block.
    func instanceTools() -> [JSONValue]
    /// The operator reloaded the drivers and this instance keeps serving: re-read the tool lists
    /// (asynchronously) and notify when they changed. Must not block.
    func refresh()
}

/// The host as one instance of a `NovaDynamicToolsDriver` reaches it outside a call: to say
/// its tool list changed (ABI 1.1 `tools_changed`) and to log from its own threads.
public struct InstanceHost: @unchecked Sendable {
    // @unchecked: the host API is immutable and callable from any thread; the instance pointer
    // is an opaque token the host only compares.
    let host: HostServices
    let instance: OpaquePointer

    /// Asks the host to read `instanceTools()` again, later, on a thread of its own.
    public func toolsChanged() { host.toolsChanged(instance) }

    /// Writes a log record through the host (never to stdout/stderr).
    public func log(_ level: LogLevel, _ message: String, channel: LogChannel = .systemLog) { host.log(level, channel, message) }
}

/// A tool's result: a JSON value, or bytes that already are JSON (no re-encoding).
public enum ToolOutput: Sendable {
    case json(JSONValue)
    case rawJSON([UInt8])
}

/// An error a driver throws; its `status` becomes the ABI status of the call.
public struct DriverError: Error, Sendable, CustomStringConvertible {
    /// The ABI status family.
    public enum Status: Sendable {
        case invalidArgument, unknownTool, tool, cancelled, deadline, `internal`, unsupported

        /// The header's status constant (nova_driver.h), never a copy of its value.
        public var rawValue: Int32 {
            switch self {
            case .invalidArgument: Int32(NOVA_ERR_INVALID_ARGUMENT)
            case .unknownTool: Int32(NOVA_ERR_UNKNOWN_TOOL)
            case .tool: Int32(NOVA_ERR_TOOL)
            case .cancelled: Int32(NOVA_ERR_CANCELLED)
            case .deadline: Int32(NOVA_ERR_DEADLINE)
            case .internal: Int32(NOVA_ERR_INTERNAL)
            case .unsupported: Int32(NOVA_ERR_UNSUPPORTED)
            }
        }
    }
    public var status: Status
    public var code: String
    public var message: String
    /// Extra fields for the error object (e.g. `sqlstate`).
    public var details: [String: JSONValue]

    public init(_ status: Status, code: String, message: String, details: [String: JSONValue] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public static func invalidArgument(_ message: String) -> DriverError { DriverError(.invalidArgument, code: NOVA_CODE_INVALID_ARGUMENT, message: message) }
    public static func unknownTool(_ tool: String) -> DriverError { DriverError(.unknownTool, code: "unknown_tool", message: "unknown tool '\(tool)'") }
    public static func tool(_ code: String, _ message: String, details: [String: JSONValue] = [:]) -> DriverError { DriverError(.tool, code: code, message: message, details: details) }

    public var description: String { "\(code): \(message)" }

    var errorObject: JSONValue {
        var obj = details
        obj["code"] = .string(code)
        obj["message"] = .string(message)
        return .object(obj)
    }
}

/// Log levels of the ABI's `log` service.
public enum LogLevel: Int32, Sendable { case trace = 0, debug, info, warning, error }

/// Log channels of the ABI's `log` service.
public enum LogChannel: String, Sendable {
    case systemLog = "system_log", humanUI = "human_ui", modelInstruction = "model_instruction"
}

/// One tool call as a Swift driver sees it.
public struct ToolCall: Sendable {
    /// The call id (unique in the host process).
    public let id: UInt64
    /// The tool's short name (without the driver prefix).
    public let tool: String
    /// The input as the host sent it: UTF-8 JSON validated against the tool's inputSchema.
    public let inputBytes: [UInt8]
    /// CLOCK_MONOTONIC deadline in nanoseconds, or nil.
    public let deadlineNanos: Int64?
    let host: HostServices

    /// The input parsed as JSON.
    public func input() throws -> JSONValue {
        do { return try JSONValue.parse(inputBytes) } catch { throw DriverError.invalidArgument("input is not JSON: \(error)") }
    }

    /// Decodes the input into a `Decodable` type.
    public func decodeInput<T: Decodable>(_ type: T.Type) throws -> T {
        do { return try input().decode(type) } catch let e as DriverError { throw e } catch {
            throw DriverError.invalidArgument("input does not match \(T.self): \(error)")
        }
    }

    /// True once the host cancelled the call or its deadline passed.
    public var isCancelled: Bool { host.isCancelled(id) }

    /// Nanoseconds left before the deadline (nil: none; may be negative).
    public var remainingNanos: Int64? { deadlineNanos.map { $0 - monotonicNanos() } }

    /// Writes a log record through the host (never to stdout/stderr).
    public func log(_ level: LogLevel, _ message: String, channel: LogChannel = .systemLog) { host.log(level, channel, message) }

    /// Reports usage to charge against budgets. Call before returning.
    public func reportUsage(tokens: UInt64, costMicros: UInt64 = 0) { host.reportUsage(id, tokens: tokens, costMicros: costMicros) }
}

/// CLOCK_MONOTONIC in nanoseconds (the clock of deadlines).
public func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// The host's services as given to `nova_driver_init`.
final class HostServices: @unchecked Sendable {
    // @unchecked: the pointer is owned by the host, immutable, valid until shutdown, and its
    // services may be called from any thread (nova_driver.h).
    let api: UnsafePointer<nova_host_api>
    init(api: UnsafePointer<nova_host_api>) { self.api = api }

    func complete(_ id: UInt64, status: Int32, output: [UInt8]) {
        output.withUnsafeBufferPointer { buf in
            api.pointee.complete(api.pointee.host_ctx, id, status, nova_buf(ptr: buf.baseAddress, len: buf.count))
        }
    }
    func isCancelled(_ id: UInt64) -> Bool { api.pointee.is_cancelled(api.pointee.host_ctx, id) != 0 }
    func log(_ level: LogLevel, _ channel: LogChannel, _ message: String) {
        var text = message
        text.withUTF8 { bytes in
            channel.rawValue.withCString { ch in
                api.pointee.log(api.pointee.host_ctx, level.rawValue, ch, nova_buf(ptr: bytes.baseAddress, len: bytes.count))
            }
        }
    }
    func toolsChanged(_ instance: OpaquePointer) {
        // A 1.0 host has no such field (nova_host_api grows at the end).
        let size1_1 = MemoryLayout<nova_host_api>.offset(of: \.tools_changed)! + MemoryLayout<UnsafeRawPointer>.size
        guard Int(api.pointee.struct_size) >= size1_1, let notify = api.pointee.tools_changed else { return }
        notify(api.pointee.host_ctx, instance)
    }
    func reportUsage(_ id: UInt64, tokens: UInt64, costMicros: UInt64) {
        var usage = nova_usage(struct_size: UInt32(MemoryLayout<nova_usage>.size), abi_major: 1, abi_minor: 0,
                               tokens: tokens, cost_micros: costMicros)
        api.pointee.report_usage(api.pointee.host_ctx, id, &usage)
    }
}

/// Driver-wide state behind `driver_ctx`.
final class DriverBox: @unchecked Sendable {
    // @unchecked: immutable after init; the manifest buffer is never written again.
    let host: HostServices
    let manifest: UnsafeMutableBufferPointer<UInt8>
    let make: @Sendable (JSONValue) throws -> any NovaDriver
    init(host: HostServices, manifest: [UInt8], make: @escaping @Sendable (JSONValue) throws -> any NovaDriver) {
        self.host = host
        self.manifest = .allocate(capacity: max(manifest.count, 1))
        _ = self.manifest.initialize(from: manifest)
        self.make = make
        self.manifestCount = manifest.count
    }
    let manifestCount: Int
}

/// One instance behind `nova_instance *`: the driver value and its running async calls.
final class InstanceBox: Sendable {
    let driver: any NovaDriver
    let host: HostServices
    let tasks = Mutex<[UInt64: Task<Void, Never>]>([:])
    /// The bytes of the last `describe_instance`, valid until the next one or `destroy`.
    let describedTools = Mutex<OwnedBytes?>(nil)
    init(driver: any NovaDriver, host: HostServices) {
        self.driver = driver
        self.host = host
    }
}

/// Bytes at a stable address the host may read until they are replaced (a Swift array's
/// storage is not promised to outlive `withUnsafeBufferPointer`).
final class OwnedBytes: @unchecked Sendable {
    // @unchecked: written once in init, then only read (by the host) until deinit.
    let pointer: UnsafeMutableBufferPointer<UInt8>
    let count: Int
    init(_ bytes: [UInt8]) {
        pointer = .allocate(capacity: max(bytes.count, 1))
        _ = pointer.initialize(from: bytes)
        count = bytes.count
    }
    deinit { pointer.deallocate() }
}

private func encode(_ output: ToolOutput) -> [UInt8] {
    switch output {
    case .json(let v): return v.serializedBytes()
    case .rawJSON(let b): return b
    }
}

private func failure(_ error: any Error) -> (Int32, [UInt8]) {
    if let e = error as? DriverError { return (e.status.rawValue, e.errorObject.serializedBytes()) }
    if error is CancellationError {
        return (DriverError.Status.cancelled.rawValue, JSONValue.object(["code": .string(NOVA_CODE_CANCELLED), "message": "cancelled"]).serializedBytes())
    }
    let obj: JSONValue = .object(["code": "tool_error", "message": .string(String(describing: error))])
    return (DriverError.Status.tool.rawValue, obj.serializedBytes())
}

private let describeThunk: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<nova_buf>?) -> Int32 = { ctx, out in
    guard let ctx, let out else { return Int32(NOVA_ERR_INVALID_ARGUMENT) }
    let box = Unmanaged<DriverBox>.fromOpaque(ctx).takeUnretainedValue()
    out.pointee = nova_buf(ptr: UnsafePointer(box.manifest.baseAddress), len: box.manifestCount)
    return Int32(NOVA_OK)
}

private let createThunk: @convention(c) (UnsafeMutableRawPointer?, nova_buf, UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<CChar>?, Int) -> Int32 = { ctx, config, out, errbuf, errcap in
    guard let ctx, let out else { return Int32(NOVA_ERR_INVALID_ARGUMENT) }
    let box = Unmanaged<DriverBox>.fromOpaque(ctx).takeUnretainedValue()
    func fail(_ status: Int32, _ message: String) -> Int32 {
        if let errbuf, errcap > 0 {
            var bytes = Array(message.utf8.prefix(errcap - 1))
            bytes.append(0)
            bytes.withUnsafeBufferPointer { b in
                errbuf.withMemoryRebound(to: UInt8.self, capacity: errcap) { $0.update(from: b.baseAddress!, count: b.count) }
            }
        }
        return status
    }
    do {
        let bytes = config.ptr.map { Array(UnsafeBufferPointer(start: $0, count: config.len)) } ?? []
        let json = bytes.isEmpty ? JSONValue.object([:]) : try JSONValue.parse(bytes)
        let driver = try box.make(json)
        let instance = OpaquePointer(Unmanaged.passRetained(InstanceBox(driver: driver, host: box.host)).toOpaque())
        (driver as? any NovaDynamicToolsDriver)?.attach(InstanceHost(host: box.host, instance: instance))
        out.pointee = instance
        return Int32(NOVA_OK)
    } catch let e as DriverError {
        return fail(e.status.rawValue, e.message)
    } catch {
        return fail(Int32(NOVA_ERR_INVALID_ARGUMENT), String(describing: error))
    }
}

private let destroyThunk: @convention(c) (OpaquePointer?) -> Void = { instance in
    guard let instance else { return }
    let box = Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance))
    box.takeUnretainedValue().driver.close()
    box.release()
}

private let describeInstanceThunk: @convention(c) (OpaquePointer?, UnsafeMutablePointer<nova_buf>?) -> Int32 = { instance, out in
    guard let instance, let out else { return Int32(NOVA_ERR_INVALID_ARGUMENT) }
    let box = Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance)).takeUnretainedValue()
    guard let driver = box.driver as? any NovaDynamicToolsDriver else { return Int32(NOVA_ERR_UNSUPPORTED) }
    let bytes = JSONValue.object(["tools": .array(driver.instanceTools())]).serializedBytes()
    // The host reads the buffer after we return; it stays in the box until the next describe.
    let copy = OwnedBytes(bytes)
    box.describedTools.withLock { $0 = copy }
    out.pointee = nova_buf(ptr: UnsafePointer(copy.pointer.baseAddress), len: copy.count)
    return Int32(NOVA_OK)
}

private let refreshThunk: @convention(c) (OpaquePointer?) -> Int32 = { instance in
    guard let instance else { return Int32(NOVA_ERR_INVALID_ARGUMENT) }
    let box = Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance)).takeUnretainedValue()
    (box.driver as? any NovaDynamicToolsDriver)?.refresh()
    return Int32(NOVA_OK)
}

private let callThunk: @convention(c) (OpaquePointer?, UnsafePointer<nova_call>?) -> Int32 = { instance, callPtr in
    guard let instance, let callPtr else { return Int32(NOVA_ERR_INVALID_ARGUMENT) }
    let box = Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance)).takeUnretainedValue()
    let c = callPtr.pointee
    let tool = c.tool.ptr.map { String(decoding: UnsafeBufferPointer(start: $0, count: c.tool.len), as: UTF8.self) } ?? ""
    let input = c.input.ptr.map { Array(UnsafeBufferPointer(start: $0, count: c.input.len)) } ?? []
    let call = ToolCall(id: c.call_id, tool: tool, inputBytes: input, deadlineNanos: c.deadline_ns == 0 ? nil : c.deadline_ns, host: box.host)
    do {
        if let output = try box.driver.callNow(call) {
            box.host.complete(call.id, status: Int32(NOVA_OK), output: encode(output))
            return Int32(NOVA_OK)
        }
    } catch {
        let (status, body) = failure(error)
        box.host.complete(call.id, status: status, output: body)
        return Int32(NOVA_OK)
    }
    // Async path: a Swift task answers later; the host thread returns at once.
    let id = call.id
    box.tasks.withLock { tasks in
        tasks[id] = Task {
            let status: Int32
            let body: [UInt8]
            do {
                let output = try await box.driver.call(call)
                (status, body) = (Int32(NOVA_OK), encode(output))
            } catch {
                (status, body) = failure(error)
            }
            _ = box.tasks.withLock { $0.removeValue(forKey: id) }
            box.host.complete(id, status: status, output: body)
        }
    }
    return Int32(NOVA_PENDING)
}

private let cancelThunk: @convention(c) (OpaquePointer?, UInt64) -> Int32 = { instance, id in
    guard let instance else { return Int32(NOVA_ERR_INVALID_ARGUMENT) }
    let box = Unmanaged<InstanceBox>.fromOpaque(UnsafeRawPointer(instance)).takeUnretainedValue()
    box.tasks.withLock { $0[id] }?.cancel()
    return Int32(NOVA_OK)
}

private let shutdownThunk: @convention(c) (UnsafeMutableRawPointer?) -> Void = { ctx in
    guard let ctx else { return }
    // The manifest buffer stays: the host may still show it; the image is never unloaded.
    Unmanaged<DriverBox>.fromOpaque(ctx).release()
}

/// Fills the ABI function table for a `NovaDriver` type. Call it from your exported
/// `nova_driver_init` (see `NovaDriver`).
public enum DriverExport {
    /// The ABI version DriverKit implements.
    public static let abiMajor: UInt16 = UInt16(NOVA_ABI_MAJOR)
    public static let abiMinor: UInt16 = UInt16(NOVA_ABI_MINOR)

    /// Negotiates and fills `table` (a `nova_driver *`) for `D`. `host` is the `nova_host_api *`.
    public static func initialize<D: NovaDriver>(_ type: D.Type, host: UnsafeRawPointer?, table: UnsafeMutableRawPointer?) -> Int32 {
        guard let host, let table else { return Int32(NOVA_ERR_INVALID_ARGUMENT) }
        let out = table.assumingMemoryBound(to: nova_driver.self)
        if out.pointee.abi_major != abiMajor {
            out.pointee.abi_major = abiMajor
            out.pointee.abi_minor = abiMinor
            return Int32(NOVA_ERR_VERSION)
        }
        let size1_0 = MemoryLayout<nova_driver>.offset(of: \.shutdown)! + MemoryLayout<UnsafeRawPointer>.size
        guard Int(out.pointee.struct_size) >= size1_0 else { return Int32(NOVA_ERR_VERSION) }
        let api = host.assumingMemoryBound(to: nova_host_api.self)
        let box = DriverBox(host: HostServices(api: api), manifest: D.manifest.serializedBytes()) { config in
            try D(configuration: config)
        }
        // Instance tool lists (1.1) only for drivers that have them, and only when the host
        // offers 1.1 and room for its fields; every other driver fills the 1.0 table.
        let size1_1 = MemoryLayout<nova_driver>.offset(of: \.refresh)! + MemoryLayout<UnsafeRawPointer>.size
        let dynamic = D.self is any NovaDynamicToolsDriver.Type && out.pointee.abi_minor >= 1 && Int(out.pointee.struct_size) >= size1_1
        out.pointee.struct_size = UInt32(dynamic ? size1_1 : size1_0)
        out.pointee.abi_major = abiMajor
        out.pointee.abi_minor = dynamic ? 1 : 0
        if dynamic {
            out.pointee.describe_instance = describeInstanceThunk
            out.pointee.refresh = refreshThunk
        }
        out.pointee.driver_ctx = Unmanaged.passRetained(box).toOpaque()
        out.pointee.describe = describeThunk
        out.pointee.create = createThunk
        out.pointee.destroy = destroyThunk
        out.pointee.call = callThunk
        out.pointee.cancel = cancelThunk
        out.pointee.shutdown = shutdownThunk
        return Int32(NOVA_OK)
    }
}
