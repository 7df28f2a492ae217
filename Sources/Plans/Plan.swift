import JSON

/// What a step does when its call fails after all retries.
public enum OnError: String, Sendable, Codable {
    /// The run fails; steps not started yet are skipped.
    case fail
    /// The step is recorded as failed and the run goes on; references to its output yield null.
    case `continue`
}

/// Retry settings of one step: exponential backoff with full jitter.
public struct RetryPolicy: Sendable, Equatable {
    /// Total attempts including the first (1 = no retry).
    public var maxAttempts: Int = 1
    /// Backoff before the second attempt, in milliseconds; doubles each retry.
    public var backoffMs: Int = 100
    /// Ceiling of the backoff, in milliseconds.
    public var maxBackoffMs: Int = 5_000
    public init(maxAttempts: Int = 1, backoffMs: Int = 100, maxBackoffMs: Int = 5_000) {
        self.maxAttempts = maxAttempts
        self.backoffMs = backoffMs
        self.maxBackoffMs = maxBackoffMs
    }
}

/// One step of a plan: a call of `driver.tool` with an input template.
public struct PlanStep: Sendable {
    public var id: String
    /// `driver.tool`.
    public var call: String
    /// The input template; strings may hold `${inputs.x}` and `${steps.<id>.output.<path>}`.
    public var input: JSONValue
    /// Explicit dependencies (references add implicit ones).
    public var dependsOn: [String]
    /// A boolean expression; the step is skipped when it is false.
    public var when: WhenExpression?
    public var retry: RetryPolicy
    /// Per-attempt timeout; becomes the call's deadline.
    public var timeoutMs: Int?
    public var onError: OnError
    /// Repeat the call for every element of an array (`foreach`), nil for one call.
    public var foreach: ForEach? = nil
    /// Every call of this step waits for a person's approval (`"approval": true`), whatever the policy says.
    public var requiresApproval: Bool = false
    /// The template the step runs as a sub-run (`"call": "template:restock@1"`), nil for a tool call.
    public var template: TemplateRef? = nil
}

/// A step's `foreach`: the call is made once per element of `items` (a reference that resolves
/// to an array), at most `parallelism` at a time; the step's output is the array of the calls'
/// outputs in the elements' order. The input refers to the element as `${item}` and to its
/// position as `${index}`.
public struct ForEach: Sendable {
    /// The array to iterate, usually one reference (`"${steps.list.output.rows}"`).
    public var items: JSONValue
    /// How many elements are in flight at once.
    public var parallelism: Int
    /// The most elements a step may iterate (more fails the step before any call).
    public static let maxItems = 10_000
    public static let parallelismRange = 1...64
}

/// A declared plan input.
public struct PlanInput: Sendable {
    public var name: String
    /// `string`, `integer`, `number`, `boolean`, `object`, `array` or nil for any JSON value.
    public var type: String?
    public var defaultValue: JSONValue?
    public var description: String?
    public var required: Bool { defaultValue == nil }
}

/// A parsed plan. `Plan.parse` checks its shape; `PlanValidator` checks it against the drivers.
public struct Plan: Sendable {
    public var name: String
    public var description: String?
    public var inputs: [PlanInput]
    public var steps: [PlanStep]
    /// An expression over step outputs (a template like a step's input); nil means the last step's output.
    public var output: JSONValue?
    /// The plan exactly as written.
    public var source: JSONValue

    public func step(_ id: String) -> PlanStep? { steps.first { $0.id == id } }
}
