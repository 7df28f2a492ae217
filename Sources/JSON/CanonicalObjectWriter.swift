/// Where a typed record writes its members: into a `JSONValue` object (`JSONObjectBuilder`) or
/// straight into canonical bytes (`CanonicalObjectWriter`). A record that describes its shape
/// once, generically over the sink, gets both without a second description that could drift.
public protocol JSONObjectSink: ~Copyable {
    /// Adds the member `key` with `value`. A key added twice keeps the last value.
    mutating func member(_ key: String, _ value: JSONValue)
    /// Adds the member `key` whose value is the object `body` writes.
    mutating func member(_ key: String, object body: (inout Self) -> Void)
    /// Adds the member `key` whose value is an array of `count` objects; `body(&sink, i)`
    /// writes the members of element `i`.
    mutating func member(_ key: String, objects count: Int, _ body: (inout Self, Int) -> Void)
}

/// Builds a `JSONValue` object member by member.
public struct JSONObjectBuilder: JSONObjectSink {
    /// The members so far.
    public var members: JSONObject

    /// An empty object, with room for `capacity` members.
    public init(capacity: Int = 0) { members = JSONObject(minimumCapacity: capacity) }

    /// The object built.
    public var value: JSONValue { .object(members) }

    public mutating func member(_ key: String, _ value: JSONValue) { members[JSONKey(key)] = value }

    public mutating func member(_ key: String, object body: (inout JSONObjectBuilder) -> Void) {
        var o = JSONObjectBuilder()
        body(&o)
        members[JSONKey(key)] = o.value
    }

    public mutating func member(_ key: String, objects count: Int, _ body: (inout JSONObjectBuilder, Int) -> Void) {
        var elements: [JSONValue] = []
        elements.reserveCapacity(count)
        for i in 0..<count {
            var o = JSONObjectBuilder()
            body(&o, i)
            elements.append(o.value)
        }
        members[JSONKey(key)] = .array(elements)
    }
}

/// An object's members in canonical encoding (`"name":value` each, as `canonicalBytes()`
/// writes them), sorted by name in UTF-16 order, not yet wrapped in braces: what a caller
/// merges with members of its own (the episode store adds its chain fields).
public struct CanonicalMembers: Sendable {
    /// The members' encodings.
    public let bytes: [UInt8]
    /// Each member's name and the range of its `"name":value` in `bytes`, in canonical order.
    public let members: [(name: String, range: Range<Int>)]

    /// No members.
    public static let empty = CanonicalMembers(bytes: [], members: [])

    init(bytes: [UInt8], members: [(name: String, range: Range<Int>)]) {
        self.bytes = bytes
        self.members = members
    }

    /// The members of `object` (any order; canonical order is made here).
    public init(_ object: JSONObject) {
        var w = CanonicalObjectWriter()
        object.withMembers { members in
            for i in 0..<members.count { w.member(members[i].key.string, members[i].value) }
        }
        self = w.finishMembers()
    }

    /// These members without the one named `name`.
    public func removing(_ name: String) -> CanonicalMembers {
        guard let i = members.firstIndex(where: { $0.name == name }) else { return self }
        var rest = members
        rest.remove(at: i)
        return CanonicalMembers(bytes: bytes, members: rest)
    }

    /// The encoding of member `name` (`"name":value`), if present.
    public func encoding(of name: String) -> ArraySlice<UInt8>? {
        members.first(where: { $0.name == name }).map { bytes[$0.range] }
    }

    /// The canonical encoding of the object of these members (equal to `canonicalBytes()` of
    /// the same `JSONValue`).
    public var objectBytes: [UInt8] { Self.object(merging: self, .empty).bytes }

    /// The object holding the members of `a` and `b` (no name in both), in canonical order,
    /// and the offset in its bytes after the last member that sorts before `mark` (1 — just
    /// after `{` — when none does): where a member named `mark` would go.
    public static func object(merging a: CanonicalMembers, _ b: CanonicalMembers, mark: String = "")
        -> (bytes: [UInt8], markAt: Int)
    {
        var out: [UInt8] = []
        out.reserveCapacity(a.bytes.count + b.bytes.count + a.members.count + b.members.count + 2)
        out.append(0x7B)
        var markAt = 1
        var i = 0, j = 0
        while i < a.members.count || j < b.members.count {
            let takeA = j == b.members.count || (i < a.members.count && utf16Less(a.members[i].name, b.members[j].name))
            let (name, slice) = takeA ? (a.members[i].name, a.bytes[a.members[i].range]) : (b.members[j].name, b.bytes[b.members[j].range])
            if takeA { i += 1 } else { j += 1 }
            if out.count > 1 { out.append(0x2C) }
            out.append(contentsOf: slice)
            if utf16Less(name, mark) { markAt = out.count }
        }
        out.append(0x7D)
        return (out, markAt)
    }
}

/// Writes objects in canonical encoding member by member, in any order, without building a
/// `JSONValue`: each object's members are put in canonical order when it closes (its bytes are
/// rearranged in place). Values are written as `canonicalBytes()` writes them, so the result
/// equals `canonicalBytes()` of the equivalent `JSONValue` (tested).
public struct CanonicalObjectWriter: JSONObjectSink, ~Copyable {
    /// A member written: its name and the range of its `"name":value`.
    struct Span {
        let name: String
        let start: Int
        let end: Int
        static func precedes(_ a: Span, _ b: Span) -> Bool {
            utf16Less(a.name, b.name) || (a.name == b.name && a.start < b.start)
        }
    }

    private var writer = JSONWriter(mode: .canonical, sortKeys: true, capacity: 2048)
    /// The members of the objects open, innermost last.
    private var spans: [Span] = []
    /// Where a closing object's members are copied while they are put in order.
    private var scratch: [UInt8] = []

    /// A writer of one top-level object's members.
    public init() {
        spans.reserveCapacity(32)
    }

    public mutating func member(_ key: String, _ value: JSONValue) {
        let start = writer.out.count
        writeName(key)
        writer.write(value, indent: 0)
        spans.append(Span(name: key, start: start, end: writer.out.count))
    }

    public mutating func member(_ key: String, object body: (inout CanonicalObjectWriter) -> Void) {
        let start = writer.out.count
        writeName(key)
        writeObject(body)
        spans.append(Span(name: key, start: start, end: writer.out.count))
    }

    public mutating func member(_ key: String, objects count: Int, _ body: (inout CanonicalObjectWriter, Int) -> Void) {
        let start = writer.out.count
        writeName(key)
        writer.out.append(0x5B)
        for i in 0..<count {
            if i > 0 { writer.out.append(0x2C) }
            writeObject { body(&$0, i) }
        }
        writer.out.append(0x5D)
        spans.append(Span(name: key, start: start, end: writer.out.count))
    }

    /// The top-level members written, in canonical order.
    public consuming func finishMembers() -> CanonicalMembers {
        let n = Self.sortAndDeduplicate(&spans, from: 0)
        return CanonicalMembers(bytes: writer.out.bytes, members: spans[0..<n].map { ($0.name, $0.start..<$0.end) })
    }

    private mutating func writeName(_ key: String) {
        writer.writeString(key)
        writer.out.append(0x3A)
    }

    /// Writes `{`, the members `body` adds in canonical order, `}`.
    private mutating func writeObject(_ body: (inout CanonicalObjectWriter) -> Void) {
        let start = writer.out.count
        let first = spans.count
        body(&self)
        let n = Self.sortAndDeduplicate(&spans, from: first)
        // The members as written, copied aside, then written back in order with punctuation.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: writer.out.base + start, count: writer.out.count - start))
        writer.out.truncate(to: start)
        writer.out.append(0x7B)
        scratch.withUnsafeBufferPointer { written in
            for k in 0..<n {
                if k > 0 { writer.out.append(0x2C) }
                let m = spans[first + k]
                writer.out.append(UnsafeBufferPointer(rebasing: written[(m.start - start)..<(m.end - start)]))
            }
        }
        writer.out.append(0x7D)
        spans.removeSubrange(first...)
    }

    /// Sorts `spans[from...]` by name (UTF-16 order) and moves the ones to keep to the front
    /// (of a name written twice, the last); returns how many are kept.
    private static func sortAndDeduplicate(_ spans: inout [Span], from: Int) -> Int {
        spans[from...].sort(by: Span.precedes)
        var kept = 0
        for i in from..<spans.count {
            if i + 1 < spans.count && spans[i + 1].name == spans[i].name { continue }
            spans[from + kept] = spans[i]
            kept += 1
        }
        return kept
    }
}
