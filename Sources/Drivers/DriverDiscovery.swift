#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `.so` found in the drivers directory. Discovery never opens the file: a broken driver
/// costs nothing until a plan uses one of its tools.
public struct DiscoveredDriver: Sendable, Equatable {
    /// The driver name derived from the file name (`libnova_echo.so` → `echo`).
    public var name: String
    /// The path as the host will open it (`<drivers dir>/<file>`).
    public var path: String
    public var sizeBytes: Int64
    /// Modification time in nanoseconds since the epoch (used to notice replaced files).
    public var modifiedNanos: Int64
}

/// Finds drivers in a directory and checks that a file is safe to `dlopen`.
public enum DriverDiscovery {
    /// The driver name a file provides: `libnova_<name>.so`, `nova_<name>.so` or `<name>.so`.
    /// Returns nil for files that are not drivers.
    public static func driverName(forFile file: String) -> String? {
        guard file.hasSuffix(".so"), !file.hasPrefix(".") else { return nil }
        var stem = String(file.dropLast(3))
        for prefix in ["libnova_", "nova_"] where stem.hasPrefix(prefix) {
            stem = String(stem.dropFirst(prefix.count))
            break
        }
        return DriverManifest.isValidName(stem) ? stem : nil
    }

    /// Lists `*.so` files in `directory` (not recursing, skipping `.gen` and hidden files).
    /// A missing directory yields an empty list. When two files claim one name the first in
    /// sorted order wins and the other is reported in `conflicts`.
    public static func scan(directory: String) -> (drivers: [DiscoveredDriver], conflicts: [String]) {
        guard let dir = opendir(directory) else { return ([], []) }
        defer { closedir(dir) }
        var files: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if driverName(forFile: name) != nil { files.append(name) }
        }
        var drivers: [DiscoveredDriver] = []
        var conflicts: [String] = []
        var seen = Set<String>()
        for file in files.sorted() {
            guard let name = driverName(forFile: file) else { continue }
            let path = directory.hasSuffix("/") ? directory + file : directory + "/" + file
            if !seen.insert(name).inserted {
                conflicts.append("\(path) also claims driver '\(name)'; ignored")
                continue
            }
            var st = stat()
            let ok = lstat(path, &st) == 0
            drivers.append(DiscoveredDriver(
                name: name, path: path,
                sizeBytes: ok ? Int64(st.st_size) : -1,
                modifiedNanos: ok ? Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec) : 0))
        }
        return (drivers, conflicts)
    }

    /// Refuses files that must not be loaded into the host: anything but a regular file, a file
    /// group- or world-writable, or one whose real path lies outside the drivers directory
    /// (a symlink or `..` escaping it). Returns the real path to open.
    public static func checkSafeToLoad(path: String, driversDirectory: String) throws(DriverLoadError) -> String {
        guard let realDir = realPath(driversDirectory) else {
            throw .unsafeFile(path: path, reason: "the drivers directory \(driversDirectory) does not exist")
        }
        guard let real = realPath(path) else {
            throw .unsafeFile(path: path, reason: "the file does not exist or cannot be resolved")
        }
        let prefix = realDir.hasSuffix("/") ? realDir : realDir + "/"
        guard real.hasPrefix(prefix) else {
            throw .unsafeFile(path: path, reason: "it resolves to \(real), outside the drivers directory \(realDir)")
        }
        var st = stat()
        guard stat(real, &st) == 0 else {
            throw .unsafeFile(path: path, reason: "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw .unsafeFile(path: path, reason: "not a regular file")
        }
        if st.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            let mode = String(st.st_mode & 0o7777, radix: 8)
            throw .unsafeFile(path: path, reason: "it is group- or world-writable (mode 0\(mode)); run: chmod go-w \(path)")
        }
        return real
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
