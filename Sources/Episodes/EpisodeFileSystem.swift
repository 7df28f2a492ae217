import HostSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file being written (an episode's temp file), between `createFile` and `close`.
public struct EpisodeFileHandle: Sendable, Hashable {
    /// The open descriptor (or whatever a test double uses to identify the file).
    public let descriptor: Int32
    /// The path the file was created at.
    public let path: String

    /// A handle for `descriptor`, open on `path`.
    public init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }
}

/// A failed file-system operation: what was attempted, on which path, and the errno.
public struct EpisodeFileSystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation: `write`, `fsync`, `rename`, `fsync directory`, `read`, `unlink`, …
    public let operation: String
    /// The path it was attempted on (for `rename`, the source).
    public let path: String
    /// The `errno` value reported.
    public let errno: Int32

    /// An error for `operation` on `path` that failed with `errno`.
    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String { "\(operation) \(path) failed: \(errnoText(errno)) (errno \(errno))" }
}

/// The file-system operations the episode store performs, so that tests can inject a failure
/// at each write point (write, fsync, rename, directory fsync; the backup copy goes through the
/// same operations under `episodes/_backup/`). `PosixEpisodeFileSystem` is the real one.
///
/// Implementations report failures as `EpisodeFileSystemError`.
public protocol EpisodeFileSystem: Sendable {
    /// Creates `path` and its missing parents (`mkdir -p`); succeeds if it already exists.
    func createDirectory(_ path: String) throws
    /// The names in directory `path` (without `.` and `..`).
    func listDirectory(_ path: String) throws -> [String]
    /// Whether something exists at `path`.
    func fileExists(_ path: String) -> Bool
    /// The whole content of the file at `path`.
    func readFile(_ path: String) throws -> [UInt8]
    /// Creates (or truncates) the file `path` and writes all of `contents` to it. The data is
    /// not durable until `fsync`.
    func createFile(_ path: String, contents: [UInt8]) throws -> EpisodeFileHandle
    /// Makes the file's data and metadata durable.
    func fsync(_ file: EpisodeFileHandle) throws
    /// Closes the file (errors are ignored: the data is already durable or discarded).
    func close(_ file: EpisodeFileHandle)
    /// Atomically renames `source` to `destination` in the same directory, replacing it.
    func rename(_ source: String, to destination: String) throws
    /// Makes the entries of directory `path` (creations, renames, removals) durable.
    func fsyncDirectory(_ path: String) throws
    /// Removes the file at `path`.
    func removeFile(_ path: String) throws

    // Segment files of the episode log (`EpisodeSegmentLog`): opened once, written in place.

    /// Opens `path` for reading and writing, creating it (empty) if it does not exist.
    func openFile(_ path: String) throws -> EpisodeFileHandle
    /// Writes all of `bytes` at `offset` (`pwrite`). Not durable until `syncData` or `fsync`.
    func write(_ file: EpisodeFileHandle, _ bytes: [UInt8], at offset: Int) throws
    /// Up to `count` bytes from `offset` (`pread`); fewer at the end of the file.
    func read(_ file: EpisodeFileHandle, count: Int, at offset: Int) throws -> [UInt8]
    /// Makes the file's data durable (`fdatasync`): enough for bytes written inside its
    /// already durable size.
    func syncData(_ file: EpisodeFileHandle) throws
    /// The file's size in bytes.
    func size(_ file: EpisodeFileHandle) throws -> Int
}

/// The real file system, through POSIX calls.
public struct PosixEpisodeFileSystem: EpisodeFileSystem {
    /// The POSIX file system.
    public init() {}

    private func fail(_ op: String, _ path: String, _ code: Int32 = errno) -> EpisodeFileSystemError {
        EpisodeFileSystemError(operation: op, path: path, errno: code)
    }

    public func createDirectory(_ path: String) throws {
        if mkdir(path, 0o755) == 0 { return }
        let e = errno
        if e == EEXIST { return }
        if e == ENOENT, let slash = path.lastIndex(of: "/"), slash > path.startIndex {
            try createDirectory(String(path[..<slash]))
            if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
            throw fail("mkdir", path)
        }
        throw fail("mkdir", path, e)
    }

    public func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw fail("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func fileExists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw fail("open", path) }
        defer { _ = posixClose(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw fail("fstat", path) }
        var out: [UInt8] = []
        out.reserveCapacity(Int(st.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: max(4096, Int(st.st_size) + 1))
        while true {
            let n = chunk.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("read", path)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    public func createFile(_ path: String, contents: [UInt8]) throws -> EpisodeFileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw fail("create", path) }
        var written = 0
        let failure: Int32? = contents.withUnsafeBytes { buf -> Int32? in
            while written < buf.count {
                let n = posixWrite(fd, buf.baseAddress! + written, buf.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += n
            }
            return nil
        }
        if let failure {
            _ = posixClose(fd)
            throw fail("write", path, failure)
        }
        return EpisodeFileHandle(descriptor: fd, path: path)
    }

    public func fsync(_ file: EpisodeFileHandle) throws {
        while posixFsync(file.descriptor) != 0 {
            if errno == EINTR { continue }
            throw fail("fsync", file.path)
        }
    }

    public func close(_ file: EpisodeFileHandle) {
        _ = posixClose(file.descriptor)
    }

    public func rename(_ source: String, to destination: String) throws {
        if posixRename(source, destination) != 0 { throw fail("rename", source + " -> " + destination) }
    }

    public func fsyncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw fail("open directory", path) }
        defer { _ = posixClose(fd) }
        while posixFsync(fd) != 0 {
            if errno == EINTR { continue }
            throw fail("fsync directory", path)
        }
    }

    public func removeFile(_ path: String) throws {
        if unlink(path) != 0 { throw fail("unlink", path) }
    }

    /// Calls `io` (a `pread`/`pwrite` of the bytes from `done` on) until `count` bytes are done,
    /// it returns 0 (end of file) or fails; retries on EINTR. Returns the bytes done and the errno.
    private static func repeatPositioned(count: Int, _ io: (Int) -> Int) -> (done: Int, errno: Int32?) {
        var done = 0
        while done < count {
            let n = io(done)
            if n < 0 {
                if errno == EINTR { continue }
                return (done, errno)
            }
            if n == 0 { break }
            done += n
        }
        return (done, nil)
    }

    public func openFile(_ path: String) throws -> EpisodeFileHandle {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw fail("open", path) }
        return EpisodeFileHandle(descriptor: fd, path: path)
    }

    public func write(_ file: EpisodeFileHandle, _ bytes: [UInt8], at offset: Int) throws {
        let (written, failure) = bytes.withUnsafeBytes { buf in
            Self.repeatPositioned(count: buf.count) { done in
                posixPwrite(file.descriptor, buf.baseAddress! + done, buf.count - done, off_t(offset + done))
            }
        }
        if let failure { throw fail("write", file.path, failure) }
        if written < bytes.count { throw fail("write", file.path, EIO) }  // a write that made no progress
    }

    public func read(_ file: EpisodeFileHandle, count: Int, at offset: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let (got, failure) = out.withUnsafeMutableBytes { buf in
            Self.repeatPositioned(count: buf.count) { done in
                posixPread(file.descriptor, buf.baseAddress! + done, buf.count - done, off_t(offset + done))
            }
        }
        if let failure { throw fail("read", file.path, failure) }
        if got < count { out.removeLast(count - got) }
        return out
    }

    public func syncData(_ file: EpisodeFileHandle) throws {
        while fdatasync(file.descriptor) != 0 {
            if errno == EINTR { continue }
            throw fail("fdatasync", file.path)
        }
    }

    public func size(_ file: EpisodeFileHandle) throws -> Int {
        var st = stat()
        if fstat(file.descriptor, &st) != 0 { throw fail("fstat", file.path) }
        return Int(st.st_size)
    }
}

// The protocol's method names shadow the C functions inside the conformance.
@inline(__always) func posixClose(_ fd: Int32) -> Int32 { close(fd) }
@inline(__always) func posixFsync(_ fd: Int32) -> Int32 { fsync(fd) }
@inline(__always) func posixRename(_ a: String, _ b: String) -> Int32 { rename(a, b) }
@inline(__always) func posixRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, p, n) }
@inline(__always) func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
@inline(__always) func posixPwrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ off: off_t) -> Int { pwrite(fd, p, n, off) }
@inline(__always) func posixPread(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, _ off: off_t) -> Int { pread(fd, p, n, off) }
