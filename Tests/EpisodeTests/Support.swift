import Foundation
@_exported import TestSupport
import Host
import JSON

#if canImport(Glibc)
import Glibc
#endif

/// Paths and helpers the episode tests share.
enum EpisodeFixtures {
    /// The package root, found from this file's path.
    static let root = TestPaths.root

    /// A fresh temporary directory.
    static func tempDir(_ label: String = "episodes") -> String { TestPaths.tempDir("nova-" + label) }

    static func remove(_ path: String) { TestPaths.remove(path) }

    /// A run-record-shaped body.
    static func body(_ runId: String, status: String = "succeeded", principal: String = "alice", size: Int = 400) -> JSONValue {
        [
            "run_id": .string(runId), "plan_name": "demo", "principal": .string(principal), "status": .string(status),
            "started_at": "2025-01-01T00:00:00.000Z", "finished_at": "2025-01-01T00:00:01.000Z", "duration_ms": 1000.5,
            "inputs": ["who": "nova", "note": .string(String(repeating: "n", count: max(0, size - 300)))],
            "steps": [["id": "a", "call": "text.echo", "status": .string(status)]],
            "totals": ["calls": 1, "tokens": 12, "cost_micros": 34],
        ]
    }

    static func files(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    static func read(_ path: String) -> [UInt8] {
        (try? PosixEpisodeFileSystem().readFile(path)) ?? []
    }

    static func write(_ bytes: [UInt8], to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
}

/// The write points a test can make fail.
enum FaultPoint: String, CaseIterable, Sendable {
    case write, fsync, rename, fsyncDirectory
    case backupWrite, backupFsync, backupRename, backupFsyncDirectory
}

/// The write points of the episode log a test can make fail (the next one of its kind).
enum LogFaultPoint: String, CaseIterable, Sendable {
    /// The `pwrite` of a group to the primary segment.
    case append
    /// The `fdatasync` of the primary segment.
    case sync
    /// The `pwrite` of a group to the mirror segment.
    case mirrorAppend
    /// The fsync of a new segment being preallocated (rotation).
    case rotate
}

/// A real file system that fails one chosen operation, optionally only for one run id.
final class FaultyFileSystem: EpisodeFileSystem, @unchecked Sendable {
    private let real = PosixEpisodeFileSystem()
    private let lock = NSLock()
    private var armed: (point: FaultPoint, errno: Int32, runId: String?, remaining: Int)?
    private(set) var fired = 0

    /// Makes the next `times` operations at `point` (for `runId`, if given) fail with `errno`.
    func arm(_ point: FaultPoint, errno: Int32 = EIO, runId: String? = nil, times: Int = 1) {
        lock.withLock { armed = (point, errno, runId, times) }
    }

    func disarm() { lock.withLock { armed = nil } }

    private func check(_ point: FaultPoint, _ op: String, _ path: String) throws {
        try lock.withLock {
            guard let a = armed, a.point == point, a.remaining > 0 else { return }
            if let id = a.runId, !path.contains("/.tmp-\(id).json"), !path.hasSuffix("/\(id).json") { return }
            armed!.remaining -= 1
            fired += 1
            throw EpisodeFileSystemError(operation: op, path: path, errno: a.errno)
        }
    }

    /// Makes the next operation at a write point of the episode log fail with `errno`.
    func arm(_ point: LogFaultPoint, errno: Int32 = EIO) {
        lock.withLock { logArmed = (point, errno) }
    }

    private var logArmed: (point: LogFaultPoint, errno: Int32)?

    private func check(_ point: LogFaultPoint, _ op: String, _ path: String) throws {
        try lock.withLock {
            guard let a = logArmed, a.point == point else { return }
            logArmed = nil
            fired += 1
            throw EpisodeFileSystemError(operation: op, path: path, errno: a.errno)
        }
    }

    private static func isMirror(_ path: String) -> Bool { path.contains("/log/mirror/") }

    func openFile(_ path: String) throws -> EpisodeFileHandle { try real.openFile(path) }

    func write(_ file: EpisodeFileHandle, _ bytes: [UInt8], at offset: Int) throws {
        try check(Self.isMirror(file.path) ? .mirrorAppend : .append, "write", file.path)
        try real.write(file, bytes, at: offset)
    }

    func read(_ file: EpisodeFileHandle, count: Int, at offset: Int) throws -> [UInt8] { try real.read(file, count: count, at: offset) }

    func syncData(_ file: EpisodeFileHandle) throws {
        if !Self.isMirror(file.path) { try check(.sync, "fdatasync", file.path) }
        try real.syncData(file)
    }

    func size(_ file: EpisodeFileHandle) throws -> Int { try real.size(file) }

    private static func isBackup(_ path: String) -> Bool { path.contains("/_backup/") || path.hasSuffix("/_backup") }

    func createDirectory(_ path: String) throws { try real.createDirectory(path) }
    func listDirectory(_ path: String) throws -> [String] { try real.listDirectory(path) }
    func fileExists(_ path: String) -> Bool { real.fileExists(path) }
    func readFile(_ path: String) throws -> [UInt8] { try real.readFile(path) }

    func createFile(_ path: String, contents: [UInt8]) throws -> EpisodeFileHandle {
        try check(Self.isBackup(path) ? .backupWrite : .write, "write", path)
        return try real.createFile(path, contents: contents)
    }

    func fsync(_ file: EpisodeFileHandle) throws {
        if file.path.hasSuffix(".seg") { try check(.rotate, "fsync", file.path) }
        try check(Self.isBackup(file.path) ? .backupFsync : .fsync, "fsync", file.path)
        try real.fsync(file)
    }

    func close(_ file: EpisodeFileHandle) { real.close(file) }

    func rename(_ source: String, to destination: String) throws {
        try check(Self.isBackup(source) ? .backupRename : .rename, "rename", source)
        try real.rename(source, to: destination)
    }

    func fsyncDirectory(_ path: String) throws {
        try check(Self.isBackup(path) ? .backupFsyncDirectory : .fsyncDirectory, "fsync directory", path)
        try real.fsyncDirectory(path)
    }

    func removeFile(_ path: String) throws { try real.removeFile(path) }
}

/// A child process with its stdout on a pipe (posix_spawn; Swift cannot fork safely).
final class Child {
    let pid: pid_t
    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var eof = false

    init(path: String, arguments: [String], stderrPath: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EIO) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        Glibc.close(fds[1])
        guard rc == 0 else { Glibc.close(fds[0]); throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        self.pid = pid
        fd = fds[0]
    }

    deinit { Glibc.close(fd) }

    /// Reads what is available, waiting at most `timeoutMs`.
    func pump(timeoutMs: Int32) {
        guard !eof else { return }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutMs) > 0 else { return }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { buffer.append(contentsOf: chunk[0..<n]) } else { eof = true }
    }

    var lines: [String] {
        String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// Whether a full line equal to `line` has arrived.
    func hasLine(_ line: String) -> Bool {
        let complete = buffer.lastIndex(of: 0x0A).map { Array(buffer[...$0]) } ?? []
        return String(decoding: complete, as: UTF8.self).split(separator: "\n").contains { $0 == line }
    }

    /// Complete lines only (a line cut by SIGKILL is not an acknowledgement).
    var completeLines: [String] {
        guard let last = buffer.lastIndex(of: 0x0A) else { return [] }
        return String(decoding: buffer[...last], as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func kill() { _ = Glibc.kill(pid, SIGKILL) }

    /// Waits for the process to end; returns the raw wait status.
    @discardableResult
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        while !eof { pump(timeoutMs: 1000) }
        return status
    }
}
