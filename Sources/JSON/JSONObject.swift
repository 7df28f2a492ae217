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
/// `keys`, `values`, `mapValues`, `filter`, `merge`, iteration as `(key:value:)` pairs) with the
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

    /// An object of `members`, whose names must be distinct (as `Dictionary`'s initializer of
    /// the same name requires).
    @inlinable public init<S: Sequence>(uniqueKeysWithValues members: S) where S.Element == (JSONKey, JSONValue) {
        self.init()
        for (k, v) in members {
            precondition(position(of: k) == nil, "duplicate member name \(k.string)")
            append(k, v)
        }
    }

    /// An object of `members`; for a name given twice, `combine` decides the value kept.
    @inlinable public init<S: Sequence>(_ members: S, uniquingKeysWith combine: (JSONValue, JSONValue) throws -> JSONValue) rethrows
        where S.Element == (JSONKey, JSONValue)
    {
        self.init()
        for (k, v) in members {
            if let i = position(of: k) { storage[i].value = try combine(storage[i].value, v) } else { append(k, v) }
        }
    }

    /// The members of a `Dictionary`.
    @inlinable public init(_ members: [JSONKey: JSONValue]) {
        self.init(minimumCapacity: members.count)
        for (k, v) in members { append(k, v) }
    }

    /// An object from members keyed by `String`. Swift dictionaries keyed by `String` already
    /// merge canonically equivalent names; build a `JSONObject` directly where that matters.
    @inlinable public init(_ members: [String: JSONValue]) {
        self.init(minimumCapacity: members.count)
        for (k, v) in members { append(JSONKey(k), v) }
    }

    /// Members parsed in order, where a repeated name keeps its last value (RFC 8259 leaves
    /// duplicates to the reader; this is what `JSONValue.parse` does).
    @inlinable public init(lastWins members: some Collection<(JSONKey, JSONValue)>) {
        self.init(minimumCapacity: members.count)
        for (k, v) in members { self[k] = v }
    }

    /// Members in the order parsed. A repeated name (rare; RFC 8259 leaves it to the reader)
    /// keeps its last value, at the position of its first.
    @inlinable public init(parsed members: [Element]) {
        storage = ContiguousArray(members)  // takes the array's buffer, no copy
        index = nil
        if storage.count > Self.indexThreshold {
            var d = [JSONKey: Int](minimumCapacity: storage.count)
            for i in 0..<storage.count where d.updateValue(i, forKey: storage[i].key) != nil {
                self = JSONObject(lastWins: members.lazy.map { ($0.key, $0.value) })
                return
            }
            index = d
        } else if Self.hasRepeatedName(storage) {
            self = JSONObject(lastWins: members.lazy.map { ($0.key, $0.value) })
        }
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

    /// The value of `key`, or `defaultValue` (which a mutation through this subscript stores).
    @inlinable public subscript(key: JSONKey, default defaultValue: @autoclosure () -> JSONValue) -> JSONValue {
        get { self[key] ?? defaultValue() }
        set { self[key] = newValue }
    }

    /// The names, in member order (a view: nothing is copied until read).
    @inlinable public var keys: LazyMapCollection<ContiguousArray<Element>, JSONKey> { storage.lazy.map(\.key) }
    /// The values, in member order (a view).
    @inlinable public var values: LazyMapCollection<ContiguousArray<Element>, JSONValue> { storage.lazy.map(\.value) }
    /// The names as strings, in member order.
    @inlinable public var names: [String] { storage.map(\.key.string) }

    /// The members as a `Dictionary`.
    @inlinable public var dictionary: [JSONKey: JSONValue] {
        var d = [JSONKey: JSONValue](minimumCapacity: storage.count)
        for (k, v) in storage { d[k] = v }
        return d
    }

    /// Lends the members in place — no copy of any value, no reference counting per member.
    @inlinable public func withMembers<R, E: Error>(_ body: (UnsafeBufferPointer<Element>) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    // MARK: Mutation

    /// Sets the member `key` to `value`; returns the value it replaced.
    @inlinable @discardableResult
    public mutating func updateValue(_ value: JSONValue, forKey key: JSONKey) -> JSONValue? {
        if let i = position(of: key) {
            let old = storage[i].value
            storage[i].value = value
            return old
        }
        append(key, value)
        return nil
    }

    /// Removes the member `key`; returns its value.
    @inlinable @discardableResult
    public mutating func removeValue(forKey key: JSONKey) -> JSONValue? {
        guard let i = position(of: key) else { return nil }
        let old = storage[i].value
        remove(at: i)
        return old
    }

    /// Removes every member.
    @inlinable public mutating func removeAll() {
        storage.removeAll()
        index = nil
    }

    /// Adds or replaces the members of `other`; for a name in both, `combine(mine, theirs)`.
    @inlinable public mutating func merge(_ other: JSONObject, uniquingKeysWith combine: (JSONValue, JSONValue) throws -> JSONValue) rethrows {
        for (k, v) in other.storage {
            if let i = position(of: k) { storage[i].value = try combine(storage[i].value, v) } else { append(k, v) }
        }
    }

    /// Adds or replaces the members of `other`; for a name in both, `combine(mine, theirs)`.
    @inlinable public mutating func merge(_ other: [JSONKey: JSONValue], uniquingKeysWith combine: (JSONValue, JSONValue) throws -> JSONValue) rethrows {
        for (k, v) in other {
            if let i = position(of: k) { storage[i].value = try combine(storage[i].value, v) } else { append(k, v) }
        }
    }

    /// This object with the members of `other` added or replaced (`combine(mine, theirs)`).
    @inlinable public func merging(_ other: JSONObject, uniquingKeysWith combine: (JSONValue, JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        var copy = self
        try copy.merge(other, uniquingKeysWith: combine)
        return copy
    }

    /// The members whose value `transform` maps, same names and order.
    @inlinable public func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        var out = self
        for i in out.storage.indices { out.storage[i].value = try transform(out.storage[i].value) }
        return out
    }

    /// The members for which `transform` gives a value, with that value.
    @inlinable public func compactMapValues(_ transform: (JSONValue) throws -> JSONValue?) rethrows -> JSONObject {
        var out = JSONObject(minimumCapacity: count)
        for (k, v) in storage { if let w = try transform(v) { out.append(k, w) } }
        return out
    }

    /// The members `isIncluded` keeps, in order.
    @inlinable public func filter(_ isIncluded: (Element) throws -> Bool) rethrows -> JSONObject {
        var out = JSONObject(minimumCapacity: count)
        for m in storage where try isIncluded(m) { out.append(m.key, m.value) }
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
