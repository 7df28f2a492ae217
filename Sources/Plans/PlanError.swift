/// An invalid plan: what is wrong and where (step id and field), so the author can fix it.
public struct PlanError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The step concerned, if any.
    public var step: String?
    /// The field concerned (`call`, `input.url`, `depends_on`, `when`, ...), if any.
    public var field: String?
    public var message: String

    public init(step: String? = nil, field: String? = nil, _ message: String) {
        self.step = step
        self.field = field
        self.message = message
    }

    public var description: String {
        switch (step, field) {
        case let (s?, f?): return "step '\(s)', field '\(f)': \(message)"
        case let (s?, nil): return "step '\(s)': \(message)"
        case let (nil, f?): return "\(f): \(message)"
        default: return message
        }
    }
}

/// Several plan errors found in one pass.
public struct PlanErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [PlanError]
    /// The problems found, in document order.
    public init(errors: [PlanError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
