/// Placeholder: the fast matcher is being written.
struct ECMARegex: Sendable {
    struct Unsupported: Error {}
    init(_ source: String) throws { throw Unsupported() }
    func search(_ s: String) -> Bool { false }
}
