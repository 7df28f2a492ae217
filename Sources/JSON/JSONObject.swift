/// The members of a JSON object: names, unique by their Unicode scalars (UTF-8 bytes), each
/// with a value.
///
/// Stored as one contiguous array of members in insertion order, so that walking an object —
/// what validation, serialization and hashing do most — reads consecutive memory and can lend
/// each value without copying it (`withMembers`). Lookups by name scan the array while the
/// object is small (most are: a scan of a few names beats hashing one), and go through a hash
/// index kept beside the array once the object has more than `indexThreshold` members, so a
/// large object still answers in constant time and a parser fed many names stays linear.
///
/// It offers the parts of `Dictionary`'s interface that JSON code uses (subscripts by name,
/// `keys`, `values`, `mapValues`, `removeValue`, iteration as `(key:value:)` pairs) with the
/// same meaning: setting a name already present replaces its value in place; setting `nil`
/// removes the member. Equality and hashing ignore member order, as JSON object equality does.
public struct JSONObject: Sendable {
    public typealias Element = (key: JSONKey, value: JSONValue)

    /// The members, in insertion order; names are unique.
    @usableFromInline var storage: ContiguousArray<Element>
    /// Name → position in `storage`, kept once there are more than `indexThreshold` members.
    @usableFromInline var index: [JSONKey: Int]?

    /// Above this many members, lookups go through a hash index.
    @usableFromInline static var indexThreshold: Int { 12 }

    /// An empty object.
    @inlinable public init() {
        storage = []
        index = nil
    }

    /// An empty object with room for `minimumCapacity` members.
    @inlinable public init(minimumCapacity: Int) {
        storage = []
        storage.reserveCapacity(minimumCapacity)
        index = nil
    }

    /// An object from members keyed by `String`. Swift dictionaries keyed by `String` already
    /// merge canonically equivalent names; build a `JSONObject` directly where that matters.
    @inlinable public init(_ members: [String: JSONValue]) {
        self.init(minimumCapacity: members.count)
        for (k, v) in members { append(JSONKey(k), v) }
    }

    /// Members in order, where a repeated name keeps its last value (object literals, and
    /// parsed members with a repeated name).
    @inlinable init(lastWins members: some Collection<(JSONKey, JSONValue)>) {
        self.init(minimumCapacity: members.count)
        for (k, v) in members { self[k] = v }
    }

    /// Members in the order parsed. A repeated name (rare; RFC 8259 leaves it to the reader)
    /// keeps its last value, at the position of its first.
    @inlinable public init(parsed members: [Element]) {
        storage = ContiguousArray(members)  // takes the array's buffer, no copy
        index = nil
        rebuildIndex()
        // The index has one entry per distinct name; a small object is checked pairwise.
        let repeated = index.map { $0.count != storage.count } ?? Self.hasRepeatedName(storage)
        if repeated { self = JSONObject(lastWins: members.lazy.map { ($0.key, $0.value) }) }
    }

    /// Whether two members share a name (pairwise: for objects of at most `indexThreshold`
    /// members, where that is cheaper than hashing; names of different lengths are told apart
    /// without reading them).
    @inlinable static func hasRepeatedName(_ storage: ContiguousArray<Element>) -> Bool {
        storage.withUnsafeBufferPointer { m in
            guard m.count > 1 else { return false }
            for i in 1..<m.count {
                let name = m[i].key.string
                let length = name.utf8.count
                for j in 0..<i where m[j].key.string.utf8.count == length && JSONValue.scalarsEqual(m[j].key.string, name) {
                    return true
                }
            }
            return false
        }
    }

    // MARK: Size

    /// The number of members.
    @inlinable public var count: Int { storage.count }
    /// Whether the object has no members.
    @inlinable public var isEmpty: Bool { storage.isEmpty }

    @inlinable public mutating func reserveCapacity(_ n: Int) { storage.reserveCapacity(n) }

    // MARK: Lookup

    /// The position in member order of the member named `key`.
    @inlinable public func position(of key: JSONKey) -> Int? {
        if let index { return index[key] }
        return storage.withUnsafeBufferPointer { members in
            for i in 0..<members.count where members[i].key == key { return i }
            return nil
        }
    }

    /// The value of the member named `key`; setting replaces it (or adds the member), and
    /// setting `nil` removes it.
    @inlinable public subscript(key: JSONKey) -> JSONValue? {
        get { position(of: key).map { storage[$0].value } }
        set {
            if let i = position(of: key) {
                if let newValue { storage[i].value = newValue } else { remove(at: i) }
            } else if let newValue {
                append(key, newValue)
            }
        }
    }

    /// The member named `name` (compared by Unicode scalars).
    @inlinable public subscript(name: String) -> JSONValue? {
        get { self[JSONKey(name)] }
        set { self[JSONKey(name)] = newValue }
    }

    /// The names, in member order (a view: nothing is copied until read).
    @inlinable public var keys: LazyMapCollection<ContiguousArray<Element>, JSONKey> { storage.lazy.map(\.key) }
    /// The values, in member order (a view).
    @inlinable public var values: LazyMapCollection<ContiguousArray<Element>, JSONValue> { storage.lazy.map(\.value) }
    /// The names as strings, in member order.
    @inlinable public var names: [String] { storage.map(\.key.string) }

    /// Lends the members in place — no copy of any value, no reference counting per member.
    @inlinable public func withMembers<R, E: Error>(_ body: (UnsafeBufferPointer<Element>) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    // MARK: Mutation

    /// Removes the member `key`; returns its value.
    @inlinable @discardableResult
    public mutating func removeValue(forKey key: JSONKey) -> JSONValue? {
        guard let i = position(of: key) else { return nil }
        let old = storage[i].value
        remove(at: i)
        return old
    }

    /// The members whose value `transform` maps, same names and order.
    @inlinable public func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        var out = self
        for i in out.storage.indices { out.storage[i].value = try transform(out.storage[i].value) }
        return out
    }

    /// Appends a member whose name is not present.
    @inlinable mutating func append(_ key: JSONKey, _ value: JSONValue) {
        storage.append((key, value))
        if index != nil {
            index![key] = storage.count - 1
        } else if storage.count > Self.indexThreshold {
            rebuildIndex()
        }
    }

    @inlinable mutating func remove(at i: Int) {
        storage.remove(at: i)
        if index != nil { rebuildIndex() }
    }

    @inlinable mutating func rebuildIndex() {
        guard storage.count > Self.indexThreshold else { index = nil; return }
        var d = [JSONKey: Int](minimumCapacity: storage.count)
        for (i, m) in storage.enumerated() { d[m.key] = i }
        index = d
    }
}

extension JSONObject: RandomAccessCollection {
    public typealias Index = Int
    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { storage.count }
    @inlinable public subscript(position: Int) -> Element { storage[position] }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// An object literal; a name given twice keeps its last value.
    @inlinable public init(dictionaryLiteral elements: (JSONKey, JSONValue)...) {
        self.init(lastWins: elements)
    }
}

extension JSONObject: Hashable {
    /// Same names with equal values, in any order.
    @inlinable public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.count == b.count else { return false }
        for (k, v) in a.storage {
            guard let w = b[k], v == w else { return false }
        }
        return true
    }

    /// Order-independent: per-member hashes combined commutatively.
    public func hash(into hasher: inout Hasher) {
        var acc = 0
        for (k, v) in storage {
            var h = Hasher()
            k.hash(into: &h)
            v.hash(into: &h)
            acc = acc &+ h.finalize()
        }
        hasher.combine(storage.count)
        hasher.combine(acc)
    }
}

extension JSONObject: CustomStringConvertible {
    public var description: String { JSONValue.object(self).serialized(sortedKeys: true) }
}
