import DriverABI
import JSON
import Synchronization
import Threads
#if canImport(Glibc)
import Glibc
#endif

/// One record a driver wrote through the ABI's `log` service, with where it came from.
public struct DriverLogRecord: Sendable {
    public var driver: String
    /// The ABI level (`NOVA_LOG_TRACE` 0 … `NOVA_LOG_ERROR` 4).
    public var level: Int32
    public var channel: String
    public var message: String
    /// The driver generation (1, 2, … per registry); nil when not known (a library opened
    /// only to be described).
    public var generation: Int? = nil
    /// The ABI `call_id` of the call being made, when the driver logged from inside `call`
    /// (on the calling thread); nil for records from the driver's own threads.
    public var callId: UInt64? = nil
    /// The run the call belongs to, under the same condition.
    public var runId: String? = nil

    /// The level's name: `trace`, `debug`, `info`, `warning`, `error`.
    public var levelName: String {
        switch level {
        case ..<1: return "trace"
        case 1: return "debug"
        case 2: return "info"
        case 3: return "warning"
        default: return "error"
        }
    }
}

/// What a call in progress is, for records a driver logs while the host is inside its `call`
/// (task-locals: set around the call, read by the `log` service on the same task).
public enum DriverCallContext {
    @TaskLocal public static var callId: UInt64?
    @TaskLocal public static var runId: String?
    /// The plan step making the call (built-in tools record it as the source of what they write).
    @TaskLocal public static var stepId: String?
    /// Who the run acts for (built-in tools scope what they touch to it).
    @TaskLocal public static var principal: String?
}

/// Receives every record drivers write through the ABI's `log` service. The application sets
/// the sink at start-up: `serve`/`mcp` write JSON log lines and count them in metrics, `run`
/// prints to stderr by `--log-level`. Without a sink records are dropped.
public enum DriverLogging {
    private static let sink = Mutex<(@Sendable (DriverLogRecord) -> Void)?>(nil)
    /// Installs the process-wide sink (nil drops records).
    public static func setSink(_ newSink: (@Sendable (DriverLogRecord) -> Void)?) { sink.withLock { $0 = newSink } }
    static func emit(_ record: DriverLogRecord) { sink.withLock { $0 }?(record) }
}

/// Per-generation state behind `host_ctx`: which driver is talking, and the calls it holds.
final class HostContext: Sendable {
    let driverName: String
    let generation: Int?
    let calls = CallTable()
    /// The live instances by their `nova_instance *`, for `tools_changed` (ABI 1.1).
    private let instances = Mutex<[UInt: WeakInstance]>([:])
    init(driverName: String, generation: Int?) { (self.driverName, self.generation) = (driverName, generation) }

    private struct WeakInstance: @unchecked Sendable {
        // @unchecked: a weak reference to a Sendable class, read and written under `instances`.
        weak var instance: NativeDriverInstance?
    }

    func register(_ instance: NativeDriverInstance) {
        instances.withLock { $0[UInt(bitPattern: instance.instance)] = WeakInstance(instance: instance) }
    }
    func unregister(_ instance: NativeDriverInstance) {
        _ = instances.withLock { $0.removeValue(forKey: UInt(bitPattern: instance.instance)) }
    }
    func instance(_ pointer: OpaquePointer) -> NativeDriverInstance? {
        instances.withLock { $0[UInt(bitPattern: pointer)]?.instance }
    }

    /// The context behind a `host_ctx` pointer (kept alive by the library for the process's life).
    static func from(_ ctx: UnsafeMutableRawPointer) -> HostContext { Unmanaged<HostContext>.fromOpaque(ctx).takeUnretainedValue() }
}

// The C services handed to drivers. They capture nothing, so they are plain C function pointers.
private let hostLog: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, nova_buf) -> Void = { ctx, level, channel, message in
    guard let ctx else { return }
    let host = HostContext.from(ctx)
    let text = message.ptr.map { String(decoding: UnsafeBufferPointer(start: $0, count: message.len), as: UTF8.self) } ?? ""
    DriverLogging.emit(DriverLogRecord(driver: host.driverName, level: level,
                                       channel: channel.map { String(cString: $0) } ?? "system_log", message: text,
                                       generation: host.generation, callId: DriverCallContext.callId, runId: DriverCallContext.runId))
}

private let hostComplete: @convention(c) (UnsafeMutableRawPointer?, UInt64, Int32, nova_buf) -> Void = { ctx, id, status, output in
    guard let ctx else { return }
    let bytes = output.ptr.map { Array(UnsafeBufferPointer(start: $0, count: output.len)) } ?? []
    HostContext.from(ctx).calls.complete(id, status: status, output: bytes)
}

private let hostIsCancelled: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> Int32 = { ctx, id in
    guard let ctx else { return 0 }
    return HostContext.from(ctx).calls.isCancelled(id) ? 1 : 0
}

private let hostReportUsage: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafePointer<nova_usage>?) -> Void = { ctx, id, usage in
    guard let ctx, let usage else { return }
    let size = Int(usage.pointee.struct_size)
    // Read only the fields the driver's struct actually has.
    let tokens = size >= MemoryLayout<nova_usage>.offset(of: \.tokens)! + 8 ? usage.pointee.tokens : 0
    let cost = size >= MemoryLayout<nova_usage>.offset(of: \.cost_micros)! + 8 ? usage.pointee.cost_micros : 0
    HostContext.from(ctx).calls.addUsage(id, ToolUsage(tokens: tokens, costMicros: cost))
}

private let hostToolsChanged: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?) -> Void = { ctx, instance in
    guard let ctx, let instance else { return }
    HostContext.from(ctx).instance(instance)?.toolsChanged()
}

/// A driver library loaded with `dlopen` and negotiated: one generation of one `.so`.
/// Its image is never unloaded (`dlclose` of a Swift driver crashes the host).
public final class NativeDriverLibrary: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; the vtable's functions are
    // called according to the ABI's threading rules, which NativeDriverInstance enforces.
    public let path: String
    public let manifest: DriverManifest
    public let abiVersion: ABIVersion
    let table: nova_driver
    let hostAPI: UnsafeMutablePointer<nova_host_api>
    let handle: UnsafeMutableRawPointer
    /// This generation's `host_ctx`: its name for logs and its own call table.
    let context: HostContext
    /// The calls this generation's driver holds.
    var calls: CallTable { context.calls }
    /// Whether the driver fills the optional `cancel` function.
    public var implementsCancel: Bool { table.cancel != nil }
    /// Whether the driver filled the 1.1 table (`describe_instance`, `refresh`).
    var tableHas1_1: Bool {
        Int(table.struct_size) >= MemoryLayout<nova_driver>.offset(of: \.refresh)! + MemoryLayout<UnsafeRawPointer>.size
    }
    /// Whether instances have tool lists of their own (ABI 1.1 `describe_instance`).
    public var implementsDescribeInstance: Bool { tableHas1_1 && table.describe_instance != nil }
    /// How the driver has answered its calls so far.
    public var counters: CallCounters { calls.counters.snapshot }

    /// Opens, negotiates and describes the driver at `path` (already checked for safety).
    /// `hostVersion` is what this host offers; tests vary it to exercise negotiation.
    public init(path: String, openPath: String? = nil, expectedName: String?, hostVersion: ABIVersion = .host,
                generation: Int? = nil) throws(DriverLoadError) {
        self.path = path
        guard let handle = dlopen(openPath ?? path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw .dlopenFailed(path: path, reason: reason)
        }
        self.handle = handle
        guard let symbol = dlsym(handle, NOVA_DRIVER_INIT_SYMBOL) else { throw .missingEntrySymbol(path: path) }
        let initFn = unsafeBitCast(symbol, to: nova_driver_init_fn.self)

        let context = HostContext(driverName: expectedName ?? path, generation: generation)
        self.context = context
        let api = UnsafeMutablePointer<nova_host_api>.allocate(capacity: 1)
        // Kept for the life of the process: the driver may hold the pointer until shutdown,
        // and the image is never unloaded.
        api.initialize(to: nova_host_api(
            struct_size: UInt32(MemoryLayout<nova_host_api>.size),
            abi_major: hostVersion.major, abi_minor: hostVersion.minor,
            host_ctx: Unmanaged.passRetained(context).toOpaque(),
            log: hostLog, complete: hostComplete, is_cancelled: hostIsCancelled, report_usage: hostReportUsage,
            tools_changed: hostToolsChanged))
        self.hostAPI = api

        // Negotiate: offer our minor, then older ones while the driver answers with a version error
        // for the same major.
        var table = nova_driver()
        var status: Int32 = Int32(NOVA_ERR_VERSION)
        var offered = Int(hostVersion.minor)
        while offered >= 0 {
            table = nova_driver()
            table.struct_size = UInt32(MemoryLayout<nova_driver>.size)
            table.abi_major = hostVersion.major
            table.abi_minor = UInt16(offered)
            api.pointee.abi_minor = UInt16(offered)
            status = initFn(api, &table)
            if status != Int32(NOVA_ERR_VERSION) || table.abi_major != hostVersion.major || table.abi_minor <= UInt16(offered) {
                break
            }
            offered -= 1
        }
        let driverVersion = ABIVersion(major: table.abi_major, minor: table.abi_minor)
        if table.abi_major != hostVersion.major {
            throw .majorMismatch(path: path, driver: driverVersion, host: hostVersion)
        }
        if table.abi_minor > hostVersion.minor {
            throw .minorTooNew(path: path, driver: driverVersion, host: hostVersion)
        }
        if status == Int32(NOVA_ERR_VERSION) {
            throw .minorTooNew(path: path, driver: driverVersion, host: hostVersion)
        }
        guard status == Int32(NOVA_OK) else { throw .initFailed(path: path, status: status) }
        let required = MemoryLayout<nova_driver>.offset(of: \.shutdown)! + MemoryLayout<UnsafeRawPointer>.size
        guard Int(table.struct_size) >= required else {
            throw .structTooSmall(path: path, size: Int(table.struct_size), required: required)
        }
        if table.describe == nil { throw .missingFunction(path: path, function: "describe") }
        if table.create == nil { throw .missingFunction(path: path, function: "create") }
        if table.destroy == nil { throw .missingFunction(path: path, function: "destroy") }
        if table.call == nil { throw .missingFunction(path: path, function: "call") }
        self.table = table
        self.abiVersion = driverVersion

        var buf = nova_buf()
        let describeStatus = table.describe(table.driver_ctx, &buf)
        guard describeStatus == Int32(NOVA_OK) else {
            throw .invalidManifest(path: path, reason: "describe returned status \(describeStatus)")
        }
        let bytes = buf.ptr.map { Array(UnsafeBufferPointer(start: $0, count: buf.len)) } ?? []
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw .invalidManifest(path: path, reason: "not JSON: \(error)")
        }
        let manifest: DriverManifest
        do { manifest = try DriverManifest(json: json) } catch { throw .invalidManifest(path: path, reason: error.message) }
        if let problem = DriverManifest.schemaProblem(json: json, tools: manifest.tools) {
            throw .invalidManifest(path: path, reason: problem)
        }
        if let expectedName, manifest.name != expectedName {
            throw .nameMismatch(path: path, fileName: expectedName, manifestName: manifest.name)
        }
        self.manifest = manifest
    }

    private let shutDown = Atomic<Bool>(false)

    /// Calls the driver's `shutdown` once (when its last instance is gone). The image stays
    /// mapped: unloading a Swift or C++ runtime image is unsafe.
    public func shutdown() {
        guard !shutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        table.shutdown?(table.driver_ctx)
    }

    /// Creates an instance with `config` (a JSON object).
    public func makeInstance(config: JSONValue = .object([:])) throws(DriverLoadError) -> NativeDriverInstance {
        let configBytes = config.serializedBytes()
        var instance: OpaquePointer?
        var message = [CChar](repeating: 0, count: 1024)
        let status = configBytes.withUnsafeBufferPointer { cfg in
            message.withUnsafeMutableBufferPointer { msg in
                table.create(table.driver_ctx, nova_buf(ptr: cfg.baseAddress, len: cfg.count), &instance, msg.baseAddress, msg.count)
            }
        }
        guard status == Int32(NOVA_OK), let instance else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw .createFailed(driver: manifest.name, reason: text.isEmpty ? "create returned status \(status)" : text)
        }
        let made = NativeDriverInstance(library: self, instance: instance)
        context.register(made)
        // The instance's own tools, before its first call is routed.
        made.redescribe()
        return made
    }
}

/// One instance of a native driver: the `ToolDriver` the run engine calls.
public final class NativeDriverInstance: ToolDriver, @unchecked Sendable {
    // @unchecked: `instance` is an opaque driver pointer; entry into it is serialized by
    // `entryLock` unless the manifest declares the driver thread-safe.
    public let library: NativeDriverLibrary
    let instance: OpaquePointer
    let entryLock = Mutex(())
    /// Calls the driver has been given and not completed yet (also those the host gave up on).
    public var held: Int { library.calls.held(by: ObjectIdentifier(self)) }

    init(library: NativeDriverLibrary, instance: OpaquePointer) {
        self.library = library
        self.instance = instance
    }

    /// The instance's tools (ABI 1.1 `describe_instance`) when the driver lists its own, else
    /// the library's manifest.
    public var manifest: DriverManifest { instanceManifest.withLock { $0 } ?? library.manifest }

    private let instanceManifest = Mutex<DriverManifest?>(nil)
    /// Guards `describe_instance` against `destroy` (true once destroyed) and serializes it.
    private let describeGate = Mutex<Bool>(false)
    /// A `describe_instance` is scheduled and has not started yet (coalesces notifications).
    private let redescribePending = Atomic<Bool>(false)
    private let manifestObserver = Mutex<(@Sendable (DriverManifest) -> Void)?>(nil)
    private let toolListProblem = Mutex<String?>(nil)
    /// Why the instance's last tool list was refused (nil: adopted, or no list of its own).
    public var instanceToolsProblem: String? { toolListProblem.withLock { $0 } }

    /// Called with the new manifest each time the instance's tool list changes (the driver
    /// runner forwards it to the host).
    func observeManifest(_ observer: @escaping @Sendable (DriverManifest) -> Void) { manifestObserver.withLock { $0 = observer } }

    /// `tools_changed` from the driver (any thread, maybe under the driver's own locks): asks
    /// for its list again later, on a thread of ours.
    func toolsChanged() {
        guard implementsDescribeInstance, !redescribePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        PosixThread.detach { [self] in
            redescribePending.store(false, ordering: .releasing)
            redescribe()
        }
    }

    private var implementsDescribeInstance: Bool { library.implementsDescribeInstance }

    /// Reads the instance's tool list and adopts it if it checks out; a list that does not is
    /// logged and the previous one kept.
    func redescribe() {
        guard implementsDescribeInstance, let describe = library.table.describe_instance else { return }
        let result = describeGate.withLock { destroyed -> (Int32, [UInt8])? in
            if destroyed { return nil }
            var buf = nova_buf()
            let status = describe(instance, &buf)
            return (status, buf.ptr.map { Array(UnsafeBufferPointer(start: $0, count: buf.len)) } ?? [])
        }
        guard let (status, bytes) = result, status != Int32(NOVA_ERR_UNSUPPORTED) else { return }
        let refused: String
        do throws(ManifestError) {
            guard status == Int32(NOVA_OK) else { throw ManifestError("describe_instance returned status \(status)") }
            let json: JSONValue
            do { json = try JSONValue.parse(bytes) } catch { throw ManifestError("not JSON: \(error)") }
            let manifest = try library.manifest.replacingTools(with: json)
            instanceManifest.withLock { $0 = manifest }
            toolListProblem.withLock { $0 = nil }
            manifestObserver.withLock { $0 }?(manifest)
            return
        } catch {
            refused = error.message
        }
        toolListProblem.withLock { $0 = refused }
        DriverLogging.emit(DriverLogRecord(driver: library.manifest.name, level: 3, channel: "system_log",
                                           message: "the instance's new tool list was refused, the previous one stays: \(refused)",
                                           generation: library.context.generation))
    }

    public var refreshesOnReload: Bool { library.tableHas1_1 && library.table.refresh != nil }

    /// The operator reloaded the drivers and this instance keeps serving (ABI 1.1 `refresh`).
    public func refresh() {
        guard library.tableHas1_1, let refresh = library.table.refresh else { return }
        _ = enter { refresh(instance) }
    }

    private func enter<R>(_ body: () -> R) -> R {
        if library.manifest.concurrency == .threadSafe { return body() }
        return entryLock.withLock { _ in body() }
    }

    public func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        let id = library.calls.makeId()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ToolCallResult, any Error>) in
                invoke(id, request, waiter: .task(continuation))
            }
        } onCancel: {
            cancel(callId: id)
        }
    }

    /// Starts a call whose answer goes to `completion`, on the thread that completes it (inside
    /// this function when the driver completes at once). For a caller that is not a Swift task
    /// and should not become one: the driver runner's reader thread, which would otherwise hop
    /// to the cooperative pool and back for every call. Returns the call's id for `cancel`.
    func start(_ request: ToolCallRequest, completion: @escaping @Sendable (Result<ToolCallResult, any Error>) -> Void) -> UInt64 {
        let id = library.calls.makeId()
        invoke(id, request, waiter: .callback(completion))
        return id
    }

    /// Cancels a call started here: its waiter gets `cancelled` now, the driver is asked to stop.
    func cancel(callId id: UInt64) {
        library.calls.cancel(id)
        if let cancel = library.table.cancel { _ = enter { cancel(instance, id) } }
    }

    /// Registers call `id` and gives it to the driver.
    private func invoke(_ id: UInt64, _ request: ToolCallRequest, waiter: CallWaiter) {
        let calls = library.calls
        let label = "\(library.manifest.name).\(request.tool)"
        guard calls.register(id, label: label, instance: ObjectIdentifier(self), deadlineNanos: request.deadlineNanos,
                             continuation: waiter) else { return }
        var tool = request.tool
        let status: Int32 = tool.withUTF8 { toolBytes in
            request.input.withUnsafeBufferPointer { input in
                var call = nova_call(
                    struct_size: UInt32(MemoryLayout<nova_call>.size),
                    abi_major: library.abiVersion.major, abi_minor: library.abiVersion.minor,
                    call_id: id,
                    tool: nova_buf(ptr: toolBytes.baseAddress, len: toolBytes.count),
                    input: nova_buf(ptr: input.baseAddress, len: input.count),
                    deadline_ns: request.deadlineNanos ?? 0)
                // Records the driver logs from inside `call` carry the call (and run) id.
                return DriverCallContext.$callId.withValue(id) { enter { library.table.call(instance, &call) } }
            }
        }
        calls.noteReturn(id, status: status)
        if status < 0 { calls.refuse(id, status: status) }
    }

    /// Destroys the instance once idle. Callers must not use it afterwards.
    public func destroy() {
        describeGate.withLock { $0 = true }
        library.context.unregister(self)
        library.table.destroy(instance)
    }
}
