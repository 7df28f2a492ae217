import JSON

/// What one tool call asks of a driver. Bytes are UTF-8 JSON.
public struct ToolCallRequest: Sendable {
    /// The tool's name without the driver prefix (`echo` for `echo.echo`).
    public var tool: String
    /// The input, one JSON value as UTF-8 bytes.
    public var input: [UInt8]
    /// Absolute deadline on CLOCK_MONOTONIC in nanoseconds (`nova_monotonic_ns`), or `nil`.
    public var deadlineNanos: Int64?

    public init(tool: String, input: [UInt8], deadlineNanos: Int64? = nil) {
        self.tool = tool
        self.input = input
        self.deadlineNanos = deadlineNanos
    }
}

/// What a driver reported it consumed during one call (charged against budgets).
public struct ToolUsage: Sendable, Equatable, Codable {
    public var tokens: UInt64
    public var costMicros: UInt64

    public init(tokens: UInt64 = 0, costMicros: UInt64 = 0) {
        self.tokens = tokens
        self.costMicros = costMicros
    }

    public static func += (lhs: inout ToolUsage, rhs: ToolUsage) {
        lhs.tokens &+= rhs.tokens
        lhs.costMicros &+= rhs.costMicros
    }
}

/// A successful call: the output JSON and the usage the driver reported.
public struct ToolCallResult: Sendable {
    public var output: [UInt8]
    public var usage: ToolUsage

    public init(output: [UInt8], usage: ToolUsage = ToolUsage()) {
        self.output = output
        self.usage = usage
    }

    /// The output parsed as JSON.
    public func outputJSON() throws -> JSONValue { try JSONValue.parse(output) }
}

/// A failed call, with the ABI status it maps to and the driver's own error object if any.
public struct ToolCallError: Error, Sendable, CustomStringConvertible {
    /// Why the call failed, mirroring the ABI's negative status codes.
    public enum Kind: String, Sendable, Codable {
        case invalidArgument = "invalid_argument"
        case unknownTool = "unknown_tool"
        case tool
        case cancelled
        case deadline
        case `internal`
        case unsupported
        /// The driver could not be loaded or created (see the message).
        case unavailable
    }

    public var kind: Kind
    /// A short machine-readable code (the driver's `code`, or the kind's raw value).
    public var code: String
    /// A plain-English message.
    public var message: String
    /// Who noticed: `driver` when the driver reported it, `host` when the host gave up.
    public var source: String
    /// Usage the driver reported before failing.
    public var usage: ToolUsage

    public init(kind: Kind, code: String? = nil, message: String, source: String = "host", usage: ToolUsage = ToolUsage()) {
        self.kind = kind
        self.code = code ?? kind.rawValue
        self.message = message
        self.source = source
        self.usage = usage
    }

    public var description: String { "\(code): \(message)" }
}

/// The seam between the run engine and every driver, native (`.so`) or built in: the
/// interpreter sees only this protocol.
public protocol ToolDriver: Sendable {
    /// The driver's validated manifest.
    var manifest: DriverManifest { get }
    /// Performs one call. Throws `ToolCallError` on failure; honours task cancellation.
    func call(_ request: ToolCallRequest) async throws -> ToolCallResult
    /// Whether a reload that leaves the driver unchanged should `refresh` it (ABI 1.1).
    var refreshesOnReload: Bool { get }
    /// Re-read what the driver caches from outside (a reload left it serving). Returns at once.
    func refresh()
}

extension ToolDriver {
    public var refreshesOnReload: Bool { false }
    public func refresh() {}
}
