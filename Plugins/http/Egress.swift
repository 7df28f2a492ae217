#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix

/// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are normalised to
/// IPv4 so that every check sees the address the packets actually go to.
struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    let bytes: [UInt8]

    init?(bytes: [UInt8]) {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            self.bytes = Array(bytes[12..<16])
        } else if bytes.count == 4 || bytes.count == 16 {
            self.bytes = bytes
        } else {
            return nil
        }
    }

    /// Parses a numeric address in canonical notation (inet_pton: no shorthand forms).
    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) })
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            return nil
        }
    }

    var isV4: Bool { bytes.count == 4 }

    /// inet_ntop's text form.
    var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var copy = bytes
        let family = isV4 ? AF_INET : AF_INET6
        let ok = copy.withUnsafeMutableBytes { raw in inet_ntop(family, raw.baseAddress, &buf, socklen_t(buf.count)) } != nil
        guard ok else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The IPv4 address embedded in NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses.
    var embeddedV4: IPAddress? {
        guard !isV4 else { return nil }
        if bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...] { return IPAddress(bytes: Array(bytes[12..<16])) }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        return nil
    }
}

/// An address range such as `10.0.0.0/8` or `fc00::/7`.
struct CIDR: Sendable, CustomStringConvertible {
    let base: IPAddress
    let prefix: Int

    /// Parses `address/prefix` (or a bare address, meaning a single host).
    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let base = IPAddress(first.trimmingSpaces) else { return nil }
        let maxPrefix = base.isV4 ? 32 : 128
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let p = Int(parts[1].trimmingSpaces), (0...maxPrefix).contains(p) else { return nil }
            prefix = p
        }
        self.base = base
        self.prefix = prefix
    }

    init(_ base: IPAddress, _ prefix: Int) {
        self.base = base
        self.prefix = prefix
    }

    func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var bits = prefix
        for i in 0..<base.bytes.count where bits > 0 {
            let take = min(8, bits)
            let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
            if address.bytes[i] & mask != base.bytes[i] & mask { return false }
            bits -= take
        }
        return true
    }

    var description: String { "\(base)/\(prefix)" }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

/// Which destination addresses the http driver may connect to.
///
/// By default only public unicast addresses: loopback, private (RFC 1918, unique-local),
/// link-local (169.254.0.0/16 — cloud metadata — and fe80::/10), carrier-grade NAT, multicast,
/// unspecified, documentation, benchmarking and reserved ranges are refused, including when
/// they hide inside IPv4-mapped, NAT64 or 6to4 IPv6 addresses. `allowPrivate` lifts that;
/// `allowCIDRs` lifts it for listed ranges only; `denyCIDRs` refuses more (always wins).
struct EgressPolicy: Sendable {
    var allowPrivate = false
    var allowCIDRs: [CIDR] = []
    var denyCIDRs: [CIDR] = []

    /// Special-purpose ranges (IANA IPv4/IPv6 special-purpose registries) and why they are refused.
    static let nonPublic: [(CIDR, String)] = [
        ("0.0.0.0/8", "unspecified / this-network"), ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT"), ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"), ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments"), ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"), ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"), ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"), ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved / broadcast"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"), ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments (Teredo, ORCHID…)"), ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"), ("5f00::/16", "SRv6 SIDs"), ("fc00::/7", "unique-local (private)"),
        ("fe80::/10", "link-local"), ("fec0::/10", "site-local (deprecated)"), ("ff00::/8", "multicast"),
    ].map { (CIDR($0.0)!, $0.1) }

    static let globalUnicastV6 = CIDR("2000::/3")!

    /// Why `address` is not a public unicast address, or nil if it is.
    static func nonPublicReason(_ address: IPAddress) -> String? {
        if let (_, why) = nonPublic.first(where: { $0.0.contains(address) }) { return why }
        if !address.isV4 {
            if let v4 = address.embeddedV4 {
                if let why = nonPublicReason(v4) { return "\(why), embedded in \(address)" }
                return nil
            }
            if !globalUnicastV6.contains(address) { return "not global unicast" }
        }
        return nil
    }

    /// Nil when the driver may connect to `address`, otherwise why not.
    func refusal(_ address: IPAddress) -> String? {
        if let deny = denyCIDRs.first(where: { $0.contains(address) }) { return "\(address) is in deny_cidrs (\(deny))" }
        guard let why = Self.nonPublicReason(address) else { return nil }
        if allowPrivate { return nil }
        if allowCIDRs.contains(where: { $0.contains(address) }) { return nil }
        return "\(address) is \(why)"
    }
}

/// Resolves host names with getaddrinfo on a background thread (it blocks).
enum Resolver {
    /// Every address `host` resolves to (numeric forms such as `2130706433` or `0x7f.1`
    /// included, as the C library reads them), without duplicates, in resolver order.
    static func resolve(_ host: String) async throws -> [IPAddress] {
        // getaddrinfo can block for the resolver's whole timeout: on NIO's pool for blocking
        // work, not on the cooperative pool nor Dispatch's few global threads.
        try await NIOThreadPool.singleton.runIfActive { try resolveBlocking(host) }
    }

    struct ResolveError: Error, CustomStringConvertible {
        let host: String
        let reason: String
        var description: String { "cannot resolve '\(host)': \(reason)" }
    }

    static func resolveBlocking(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0 else { throw ResolveError(host: host, reason: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(result) }
        var out: [IPAddress] = []
        var p = result
        while let ai = p {
            if let sa = ai.pointee.ai_addr {
                if ai.pointee.ai_family == AF_INET {
                    let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: a) { Array($0) }), !out.contains(ip) { out.append(ip) }
                } else if ai.pointee.ai_family == AF_INET6 {
                    let a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: a) { Array($0) }), !out.contains(ip) { out.append(ip) }
                }
            }
            p = ai.pointee.ai_next
        }
        guard !out.isEmpty else { throw ResolveError(host: host, reason: "no IPv4 or IPv6 address") }
        return out
    }
}
