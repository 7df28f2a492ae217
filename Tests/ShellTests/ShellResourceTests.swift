import Foundation
import Host
import JSON
import Testing

/// Issue 10 items 2–4 through the driver with the real helper: memory held outside RLIMIT_AS,
/// the work dir's size limit, noexec and set-id stripping, the dedicated uid.
@Suite("shell.exec resources")
struct ShellResourceTests {
    static func config(_ extra: [String: JSONValue]) throws -> JSONValue {
        var c = try ShellFixtures.config(extra)
        if case .object(var o) = c {
            o["allowed_programs"] = .array((ShellFixtures.programs + ["/usr/bin/python3", "/bin/dd", "/bin/sh"]).map { .string($0) })
            c = .object(o)
        }
        return c
    }

    /// 16 memfds of 16 MiB written with write(2): in no address space, so RLIMIT_AS never sees them.
    static let memfdHog = """
        import os, sys
        fds = []
        for i in range(16):
            try:
                fd = os.memfd_create("hold")
            except OSError as e:
                print("refused", e.errno); sys.exit(3)
            for _ in range(16):
                os.write(fd, b"x" * (1 << 20))
            fds.append(fd)
        print("held 256 MiB")
        """

    @Test func memoryInMemfdsIsBounded() async throws {
        let h = try ShellHarness(config: Self.config(["limits": ["memory_bytes": 536_870_912, "memory_max_bytes": 67_108_864]]))
        let out = try await h.exec(["program": "/usr/bin/python3", "args": ["-c", .string(Self.memfdHog)], "timeout_ms": 30000]).value()
        #expect(out["stdout"]?.stringValue?.contains("held 256 MiB") == false)
        if geteuid() == 0 {
            // Root on this kind of host: a cgroup (v1 or v2) holds the whole sandbox.
            #expect(out["memory_bound"]?.stringValue?.hasPrefix("cgroup-") == true)
            #expect(out["killed"] == true && out["kill_reason"] == "memory")
            #expect((out["memory_peak_bytes"]?.intValue ?? Int.max) <= 67_108_864)
        } else {
            #expect(out["memory_bound"] == "rlimit-only")
            #expect(out["exit_code"] == 3 && out["stdout"] == "refused 1\n")
            #expect(out["memory_note"]?.stringValue?.contains("memfd_create is refused") == true)
        }
    }

    @Test func workDirIsSizeLimited() async throws {
        let h = try ShellHarness(config: Self.config(["limits": ["disk_bytes": 4_194_304, "fsize_bytes": 67_108_864]]))
        let out = try await h.exec(["program": "/bin/dd", "args": ["if=/dev/zero", "of=/work/f", "bs=1M", "count=64"],
                                    "read_files": ["f"]]).value()
        #expect(out["exit_code"] == 1)
        #expect(out["stderr"]?.stringValue?.contains("No space left on device") == true)
        #expect(out["disk_full"] == "bytes")
        let size = out["files"]?[0]?["size"]?.intValue ?? Int.max
        #expect(size > 0 && size <= 4_194_304)
        // An ordinary run reports a work dir that did not fill up.
        let ok = try await h.exec(["program": "/bin/true"]).value()
        #expect(ok["disk_full"] == .null && ok["memory_bound"] != nil)
    }

    @Test func noExecInWorkAndSetIdStripped() async throws {
        let h = try ShellHarness(config: Self.config(["persistent_workdirs": true]))
        let out = try await h.exec(["program": "/bin/sh", "args": ["-c", "cp /bin/true t && chmod 4755 t && ./t"], "workdir": "w"]).value()
        #expect(out["exit_code"] == 126)
        var st = stat()
        #expect(lstat(h.workRoot + "/persistent/w/t", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o755, "set-id bits are stripped when the work dir comes back")
        #expect(lstat(h.workRoot, &st) == 0 && st.st_mode & 0o777 == 0o700, "the work root is 0700")
        if geteuid() == 0 {
            #expect(lstat(h.workRoot + "/persistent/w", &st) == 0 && st.st_uid == 2_000_000_000, "the dedicated uid, not 65534")
        }
        let allowed = try ShellHarness(config: Self.config(["allow_exec_in_work": true]))
        let ran = try await allowed.exec(["program": "/bin/sh", "args": ["-c", "cp /bin/true t && ./t"]]).value()
        #expect(ran["exit_code"] == 0)
    }
}
