/// A semantic version `MAJOR.MINOR.PATCH[-PRERELEASE]` (build metadata is not accepted: two
/// documents that differ only in it would be the same version with different content).
public struct SemVer: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    /// Dot-separated pre-release identifiers, empty for a release.
    public var prerelease: [String]

    public init(major: Int, minor: Int, patch: Int, prerelease: [String] = []) {
        (self.major, self.minor, self.patch, self.prerelease) = (major, minor, patch, prerelease)
    }

    /// Parses `1.2.3` or `1.2.3-rc.1`; nil when the text is not a semantic version.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        let core = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard core.count == 3, let a = Self.number(core[0]), let b = Self.number(core[1]), let c = Self.number(core[2]) else { return nil }
        var pre: [String] = []
        if parts.count == 2 {
            pre = parts[1].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard pre.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { Self.isIdentifierByte($0) } }) else { return nil }
        }
        self.init(major: a, minor: b, patch: c, prerelease: pre)
    }

    public var description: String {
        "\(major).\(minor).\(patch)" + (prerelease.isEmpty ? "" : "-" + prerelease.joined(separator: "."))
    }

    /// Precedence as semver.org §11: a pre-release sorts before its release; numeric
    /// identifiers compare as numbers and sort before alphanumeric ones.
    public static func < (a: SemVer, b: SemVer) -> Bool {
        if (a.major, a.minor, a.patch) != (b.major, b.minor, b.patch) { return (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch) }
        if a.prerelease.isEmpty || b.prerelease.isEmpty { return !a.prerelease.isEmpty && b.prerelease.isEmpty }
        for (x, y) in zip(a.prerelease, b.prerelease) where x != y {
            switch (Int(x), Int(y)) {
            case let (m?, n?): return m < n
            case (.some, nil): return true
            case (nil, .some): return false
            default: return x < y
            }
        }
        return a.prerelease.count < b.prerelease.count
    }

    /// A decimal number without leading zeros.
    static func number(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 9, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), s == "0" || s.first != "0" else { return nil }
        return Int(s)
    }

    static func isIdentifierByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
    }
}

/// Which versions of a template a reference accepts.
public enum VersionRequirement: Sendable, Hashable, CustomStringConvertible {
    /// The highest release (pre-releases only when there is no release).
    case latest
    /// Exactly this version.
    case exact(SemVer)
    /// The highest release with this major (and minor, when given): `restock@1`, `restock@1.2`.
    case prefix(major: Int, minor: Int?)

    public var description: String {
        switch self {
        case .latest: return "latest"
        case .exact(let v): return v.description
        case .prefix(let major, let minor): return minor.map { "\(major).\($0)" } ?? "\(major)"
        }
    }

    /// Whether `version` satisfies the requirement.
    public func accepts(_ version: SemVer) -> Bool {
        switch self {
        case .latest: return true
        case .exact(let v): return v == version
        case .prefix(let major, let minor): return version.major == major && (minor == nil || version.minor == minor) && version.prerelease.isEmpty
        }
    }

    /// The best of `versions` for this requirement, or nil.
    public func select(from versions: some Sequence<SemVer>) -> SemVer? {
        let ok = versions.filter(accepts)
        if case .latest = self, let release = ok.filter({ $0.prerelease.isEmpty }).max() { return release }
        return ok.max()
    }
}

/// A reference to a template: `restock`, `restock@latest`, `restock@1`, `restock@1.2`,
/// `restock@1.2.0`. In a plan step it is written `"call": "template:restock@1"`.
public struct TemplateRef: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var version: VersionRequirement

    public init(name: String, version: VersionRequirement = .latest) {
        self.name = name
        self.version = version
    }

    /// The prefix a step's `call` uses for a template.
    public static let callPrefix = "template:"

    public var description: String { "\(name)@\(version)" }

    /// Parses `name[@version]`; throws a message saying what is wrong.
    public static func parse(_ text: String) throws(PlanError) -> TemplateRef {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard isValidName(name) else {
            throw PlanError("'\(text)': a template name is lowercase letters, digits, '-' and '_' (at most 64), starting with a letter or digit")
        }
        guard parts.count == 2 else { return TemplateRef(name: name) }
        let v = parts[1]
        if v == "latest" { return TemplateRef(name: name) }
        if let exact = SemVer(String(v)) { return TemplateRef(name: name, version: .exact(exact)) }
        let nums = v.split(separator: ".", omittingEmptySubsequences: false)
        if nums.count <= 2, let major = SemVer.number(nums[0]) {
            if nums.count == 1 { return TemplateRef(name: name, version: .prefix(major: major, minor: nil)) }
            if let minor = SemVer.number(nums[1]) { return TemplateRef(name: name, version: .prefix(major: major, minor: minor)) }
        }
        throw PlanError("'\(text)': the version must be latest, MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH")
    }

    /// The template a step's `call` names (`template:restock@1`), nil for a tool call.
    public static func fromCall(_ call: String) throws(PlanError) -> TemplateRef? {
        guard call.hasPrefix(callPrefix) else { return nil }
        return try parse(String(call.dropFirst(callPrefix.count)))
    }

    /// `[a-z0-9][a-z0-9_-]{0,63}`.
    public static func isValidName(_ s: String) -> Bool {
        guard let first = s.utf8.first, s.utf8.count <= 64 else { return false }
        func ok(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }
        return ok(first) && s.utf8.allSatisfy { ok($0) || $0 == 0x2D || $0 == 0x5F }
    }
}
