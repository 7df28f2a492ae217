import HostSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The chain's tip as last recorded by a writer, kept in `episodes/.lock` (the file that
/// writers `flock`). It is a hint that saves a directory scan on every write, not a source of
/// truth: it is written with plain `pwrite` (no fsync) while the lock is held, marked `dirty`
/// before a batch touches any episode file and `clean` after it, and carries the boot id. A
/// head that is dirty, unreadable or from another boot makes the next writer run the full
/// recovery scan instead of trusting it.
struct EpisodeHead: Equatable {
    var clean: Bool
    var seq: Int
    var hash: String
    var runId: String
    var bootId: String

    static let empty = EpisodeHead(clean: true, seq: 0, hash: EpisodeFormat.genesisHash, runId: "-", bootId: currentBootId)

    /// The kernel's boot id (Linux), so a head written before a power loss is not trusted.
    static let currentBootId: String = {
        #if os(Linux)
        if let bytes = try? PosixEpisodeFileSystem().readFile("/proc/sys/kernel/random/boot_id") {
            let s = String(decoding: bytes, as: UTF8.self).filter { $0.isHexDigit }
            if !s.isEmpty { return s }
        }
        #endif
        return "unknown"
    }()

    var encoded: [UInt8] {
        let text = "nova-episodes-head 1 \(bootId) \(clean ? "clean" : "dirty") \(seq) \(hash) \(runId)"
        let check = SHA256.hex(Array(text.utf8)).prefix(16)
        return Array("\(text) \(check)\n".utf8)
    }

    /// Parses a head record; `nil` if it is absent, truncated or fails its checksum.
    static func decode(_ bytes: [UInt8]) -> EpisodeHead? {
        guard let nl = bytes.firstIndex(of: 0x0A) else { return nil }
        let line = String(decoding: bytes[..<nl], as: UTF8.self)
        let parts = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 8, parts[0] == "nova-episodes-head", parts[1] == "1" else { return nil }
        let text = parts[0..<7].joined(separator: " ")
        guard SHA256.hex(Array(text.utf8)).prefix(16) == parts[7] else { return nil }
        guard let seq = Int(parts[4]), seq >= 0, EpisodeFormat.isHex64(parts[5]) else { return nil }
        guard parts[3] == "clean" || parts[3] == "dirty" else { return nil }
        return EpisodeHead(clean: parts[3] == "clean", seq: seq, hash: parts[5], runId: parts[6], bootId: parts[2])
    }

    /// Whether a writer may continue the chain from this head without a scan.
    var trustworthy: Bool { clean && bootId == EpisodeHead.currentBootId }
}

/// The lock file: an `flock` for writers across processes and the head record.
final class EpisodeLockFile: Sendable {
    let path: String
    let fd: Int32

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw EpisodeError.io(EpisodeFileSystemError(operation: "open", path: path, errno: errno)) }
        self.fd = fd
    }

    deinit { _ = posixClose(fd) }

    func lockExclusive() throws {
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw EpisodeError.io(EpisodeFileSystemError(operation: "flock", path: path, errno: errno))
        }
    }

    func unlock() { _ = flock(fd, LOCK_UN) }

    func readHead() -> EpisodeHead? {
        readRecord().flatMap(EpisodeHead.decode)
    }

    func writeHead(_ head: EpisodeHead) throws {
        try writeRecord(head.encoded)
    }

    /// The record kept in the lock file (`nil` if empty or unreadable).
    func readRecord() -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Array(buf[0..<n])
    }

    /// Replaces the record kept in the lock file (plain `pwrite`: a hint, not durable). A
    /// record of `fixedLength` bytes overwrites the previous one exactly: no `ftruncate`.
    func writeRecord(_ bytes: [UInt8], fixedLength: Bool = false) throws {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        if n != bytes.count {
            throw EpisodeFileSystemError(operation: "write head record", path: path, errno: n < 0 ? errno : EIO)
        }
        if !fixedLength, ftruncate(fd, off_t(bytes.count)) != 0 {
            throw EpisodeFileSystemError(operation: "truncate head record", path: path, errno: errno)
        }
    }
}
