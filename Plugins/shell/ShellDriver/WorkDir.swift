import CShellSupport
import DriverKit
import JSON
#if canImport(Glibc)
import Glibc
#endif

/// A work dir: the only host directory a sandbox can write. Fresh ones are created per call and
/// removed afterwards; named persistent ones (when the configuration allows) are kept.
///
/// Everything the host does inside it after the sandbox ran treats its contents as hostile:
/// directories are opened with `O_NOFOLLOW|O_DIRECTORY` relative to a directory descriptor, files
/// are read with `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS)` (or an
/// `O_NOFOLLOW` walk where openat2 is missing) and must be regular files.
final class WorkDir {
    /// Host path.
    let path: String
    /// `O_DIRECTORY|O_NOFOLLOW` descriptor of `path`.
    let fd: Int32
    /// Removed by `close()`.
    let ephemeral: Bool

    private init(path: String, fd: Int32, ephemeral: Bool) {
        self.path = path
        self.fd = fd
        self.ephemeral = ephemeral
    }

    /// The owner (uid, gid) sandboxes write as: the configured ids when the host is root, else nil
    /// (the sandbox maps to the host's own uid).
    static func sandboxOwner(_ config: ShellConfig) -> (uid_t, gid_t)? {
        geteuid() == 0 ? (config.sandboxUid, config.sandboxGid) : nil
    }

    /// Creates `root` (0700) if needed and checks it is a real directory owned by this user; a root
    /// that others can enter (an older 0711 one) is made 0700, so that no other host user can reach
    /// a work dir by its name (readable in `/proc/<pid>/mountinfo`).
    static func prepareRoot(_ root: String) throws {
        if mkdir(root, 0o700) != 0 && errno != EEXIST {
            throw DriverError.tool("workdir_failed", "cannot create the work root \(root): \(errnoText())")
        }
        var st = stat()
        guard lstat(root, &st) == 0 else { throw DriverError.tool("workdir_failed", "work root \(root): \(errnoText())") }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw DriverError.tool("workdir_failed", "work root \(root) is not a directory (symlinks are refused)") }
        guard st.st_uid == geteuid() else { throw DriverError.tool("workdir_failed", "work root \(root) is owned by uid \(st.st_uid), not by this process (uid \(geteuid()))") }
        if st.st_mode & 0o077 != 0 && chmod(root, 0o700) != 0 {
            throw DriverError.tool("workdir_failed", "work root \(root) is open to group or others and cannot be made 0700: \(errnoText())")
        }
    }

    /// A fresh, empty work dir `root/run-XXXXXX` (0700, owned by the sandbox's host uid).
    static func fresh(config: ShellConfig) throws -> WorkDir {
        try prepareRoot(config.workRoot)
        var template = Array((config.workRoot + "/run-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { b -> String? in mkdtemp(b.baseAddress!).map { String(cString: $0) } }
        guard let path = made else { throw DriverError.tool("workdir_failed", "cannot create a work dir in \(config.workRoot): \(errnoText())") }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let why = errnoText()
            rmdir(path)
            throw DriverError.tool("workdir_failed", "cannot open the work dir \(path): \(why)")
        }
        // Held until `close`: a lock on the directory marks it as in use, so the start-up sweep
        // of another process sharing this work root leaves it alone (flock ends with us).
        _ = flock(fd, LOCK_EX | LOCK_NB)
        let dir = WorkDir(path: path, fd: fd, ephemeral: true)
        if let (uid, gid) = sandboxOwner(config), fchown(fd, uid, gid) != 0 {
            let why = errnoText()
            dir.close()
            throw DriverError.tool("workdir_failed", "cannot hand the work dir to uid \(uid): \(why)")
        }
        return dir
    }

    /// The persistent work dir `root/persistent/NAME`, created on first use.
    static func persistent(_ name: String, config: ShellConfig) throws -> WorkDir {
        try prepareRoot(config.workRoot)
        let parent = config.workRoot + "/persistent"
        if mkdir(parent, 0o700) != 0 && errno != EEXIST {
            throw DriverError.tool("workdir_failed", "cannot create \(parent): \(errnoText())")
        }
        let pfd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard pfd >= 0 else { throw DriverError.tool("workdir_failed", "\(parent): \(errnoText())") }
        defer { Glibc.close(pfd) }
        let created = mkdirat(pfd, name, 0o700) == 0
        if !created && errno != EEXIST { throw DriverError.tool("workdir_failed", "cannot create work dir \(name): \(errnoText())") }
        let fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw DriverError.tool("workdir_failed", "cannot open work dir \(name): \(errnoText())") }
        if created, let (uid, gid) = sandboxOwner(config) { _ = fchown(fd, uid, gid) }
        return WorkDir(path: parent + "/" + name, fd: fd, ephemeral: false)
    }

    /// Creates the directories `components` below the work dir (never following a symlink) so
    /// that the program can start there.
    func makeDirectories(_ components: [String], owner: (uid_t, gid_t)?) throws {
        var cur = dup(fd)
        defer { Glibc.close(cur) }
        for c in components {
            if mkdirat(cur, c, 0o755) == 0 {
                if let (uid, gid) = owner { _ = fchownat(cur, c, uid, gid, AT_SYMLINK_NOFOLLOW) }
            } else if errno != EEXIST {
                throw DriverError.tool("workdir_failed", "cannot create cwd component '\(c)': \(errnoText())")
            }
            let next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                throw DriverError(.invalidArgument, code: "bad_cwd", message: "cwd component '\(c)' is not a directory (symlinks are not followed): \(errnoText())")
            }
            Glibc.close(cur)
            cur = next
        }
    }

    /// Reads `relative` back without following anything the sandbox planted: a JSON object
    /// `{path, size, content, encoding, truncated}` or `{path, error, message}`.
    func readBack(_ relative: String, maxBytes: Int) -> JSONValue {
        var fileFd = nova_shell_openat2_beneath(fd, relative, 0)
        if fileFd == -ENOSYS { fileFd = walkOpen(relative) }
        guard fileFd >= 0 else {
            let e = -fileFd
            let (code, message): (String, String)
            switch e {
            case ELOOP: (code, message) = ("symlink_refused", "a symbolic link is on the path; links planted in the work dir are never followed")
            case EXDEV: (code, message) = ("outside_workdir", "the path leaves the work dir")
            case ENOENT: (code, message) = ("not_found", "no such file")
            case ENOTDIR: (code, message) = ("not_found", "a component is not a directory")
            default: (code, message) = ("unreadable", String(cString: strerror(e)))
            }
            return ["path": .string(relative), "error": .string(code), "message": .string(message)]
        }
        defer { Glibc.close(fileFd) }
        var st = stat()
        guard fstat(fileFd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return ["path": .string(relative), "error": "not_regular_file", "message": "only regular files are read back (FIFOs, devices, sockets and directories are refused)"]
        }
        let flags = fcntl(fileFd, F_GETFL)
        _ = fcntl(fileFd, F_SETFL, flags & ~O_NONBLOCK)
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var truncated = false
        while true {
            let want = min(buf.count, maxBytes + 1 - data.count)
            if want <= 0 { truncated = true; break }
            let n = buf.withUnsafeMutableBytes { read(fileFd, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        if data.count > maxBytes {
            data.removeLast(data.count - maxBytes)
            truncated = true
        }
        let (content, encoding) = OutputText.encode(data, truncated: truncated)
        return ["path": .string(relative), "size": .int(Int(st.st_size)), "content": .string(content), "encoding": .string(encoding),
                "truncated": .bool(truncated)]
    }

    /// The fallback where openat2 is missing: component by component with O_NOFOLLOW.
    private func walkOpen(_ relative: String) -> Int32 {
        let parts = relative.split(separator: "/").map(String.init)
        guard !parts.isEmpty, !parts.contains(".."), !parts.contains(".") else { return -EXDEV }
        var cur = dup(fd)
        for (i, p) in parts.enumerated() {
            let last = i == parts.count - 1
            let flags = last ? (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) : (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let next = openat(cur, p, flags)
            let e = errno
            Glibc.close(cur)
            if next < 0 { return -e }
            cur = next
        }
        return cur
    }

    private var closed = false

    /// Removes `run-*` work dirs a previous process left in `root` (killed mid-call, so its
    /// cleanup never ran): those older than `minimumAgeSeconds` that no live process holds
    /// (each fresh work dir is `flock`ed by its process until its cleanup). Returns how many
    /// were removed. Called when the driver instance is created.
    @discardableResult
    static func sweepStale(root: String, minimumAgeSeconds: Int = 10) -> Int {
        guard let dir = opendir(root) else { return 0 }
        var names: [String] = []
        while let entry = readdir(dir) {
            names.append(withUnsafePointer(to: &entry.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            })
        }
        closedir(dir)
        let now = Int(time(nil))
        var removed = 0
        for name in names where name.hasPrefix("run-") {
            let path = root + "/" + name
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var st = stat()
            let old = fstat(fd, &st) == 0 && now - Int(st.st_mtim.tv_sec) >= minimumAgeSeconds
            // A lock we can take is a lock nobody holds: its process is gone.
            if old && flock(fd, LOCK_EX | LOCK_NB) == 0 {
                if removeTree(fd: fd, path: path) == nil { removed += 1 }
            }
            Glibc.close(fd)
        }
        return removed
    }

    /// Closes the descriptor; an ephemeral work dir is removed first. Returns why the work
    /// dir could not be removed completely (the call reports it), nil when it was (or is kept).
    @discardableResult
    func close() -> String? {
        guard !closed else { return nil }
        closed = true
        let problem = ephemeral ? Self.removeTree(fd: fd, path: path) : nil
        Glibc.close(fd)
        return problem
    }

    /// Removes everything below `fd` and then `path` itself, never following a link: an
    /// explicit stack (no recursion, no depth limit) that holds one directory descriptor at a
    /// time — it goes down with `openat(O_NOFOLLOW|O_DIRECTORY)` and back up through `..`,
    /// checking that `..` is the directory it came from (device and inode). Directories the
    /// sandbox made unreadable or unwritable are given 0700 first, so a mode-000 directory is
    /// no obstacle even when the host is not root. Returns what could not be removed, or nil.
    /// Called only after the sandbox's processes are gone (see `ShellDriver.call`).
    static func removeTree(fd: Int32, path: String) -> String? {
        var cleaner = TreeCleaner()
        cleaner.clear(root: fd)
        if cleaner.failures == 0 && rmdir(path) != 0 && errno != ENOENT { cleaner.fail("\(path): \(errnoText())") }
        guard cleaner.failures > 0 else { return nil }
        return "the work dir \(path) could not be removed completely (\(cleaner.failures) entr\(cleaner.failures == 1 ? "y" : "ies") left; first: \(cleaner.firstFailure ?? "?"))"
    }
}

/// The explicit-stack removal behind `WorkDir.removeTree`.
struct TreeCleaner {
    private struct Frame {
        /// The directory's name in its parent (nil for the root).
        var name: String?
        var device: UInt64
        var inode: UInt64
        /// Entries still to remove.
        var remaining: [String]
        /// Something below could not be removed: keep this directory.
        var failed = false
    }

    private(set) var failures = 0
    private(set) var firstFailure: String?

    mutating func fail(_ what: String) {
        failures += 1
        if firstFailure == nil { firstFailure = what }
    }

    /// Empties the directory `root` (the descriptor stays open and unchanged).
    mutating func clear(root: Int32) {
        var cur = dup(root)
        guard cur >= 0, let first = frame(cur, name: nil) else { fail("cannot read the work dir: \(errnoText())"); if cur >= 0 { Glibc.close(cur) }; return }
        var stack = [first]
        while !stack.isEmpty {
            if let name = stack[stack.count - 1].remaining.popLast() {
                if unlinkat(cur, name, 0) == 0 || errno == ENOENT { continue }
                guard errno == EISDIR || errno == EPERM else { fail("\(name): \(errnoText())"); stack[stack.count - 1].failed = true; continue }
                guard let sub = openDirectory(cur, name), let f = frame(sub, name: name) else {
                    fail("\(name): \(errnoText())"); stack[stack.count - 1].failed = true; continue
                }
                Glibc.close(cur)
                cur = sub
                stack.append(f)
                continue
            }
            // This directory is done: back up to its parent and remove it there.
            let done = stack.removeLast()
            guard let name = done.name, let parent = stack.last else { break }
            let up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            var st = stat()
            guard up >= 0, fstat(up, &st) == 0, UInt64(st.st_dev) == parent.device, UInt64(st.st_ino) == parent.inode else {
                // The tree moved under us: stop rather than remove anything outside it.
                fail("\(name): its parent changed during cleanup")
                if up >= 0 { Glibc.close(up) }
                Glibc.close(cur)
                return
            }
            Glibc.close(cur)
            cur = up
            if done.failed || unlinkat(cur, name, AT_REMOVEDIR) != 0 {
                if !done.failed { fail("\(name): \(errnoText())") }
                stack[stack.count - 1].failed = true
            }
        }
        Glibc.close(cur)
    }

    /// Opens `name` below `dir` as a directory, making it traversable (0700) if the sandbox
    /// left it closed.
    private func openDirectory(_ dir: Int32, _ name: String) -> Int32? {
        var sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if sub < 0 && errno == EACCES {
            _ = fchmodat(dir, name, 0o700, AT_SYMLINK_NOFOLLOW)
            sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard sub >= 0 else { return nil }
        var st = stat()
        if fstat(sub, &st) == 0, st.st_mode & 0o700 != 0o700 { _ = fchmod(sub, 0o700) }
        return sub
    }

    /// The directory `fd` with its identity and entries.
    private func frame(_ fd: Int32, name: String?) -> Frame? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let n = withUnsafePointer(to: &entry.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if n != "." && n != ".." { names.append(n) }
        }
        return Frame(name: name, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), remaining: names)
    }
}

/// errno as text.
func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }
