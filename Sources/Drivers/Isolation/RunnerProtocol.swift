import JSON

/// The frames host and driver runner exchange (each inside one `FrameChannel` frame).
///
/// Calls and results, the frames of every call, are binary: a kind byte, fixed-width integers,
/// and the input or output JSON passed through as the bytes it is, so neither side parses or
/// re-serializes it. The rare frames (init, ready, a refused load, logs) and the error of a
/// failed call are JSON objects.
///
///     json    0x01  object
///     call    0x02  id u64, deadline_ns i64 (0: none), tool (u32 length + UTF-8),
///                   run (u32 length + UTF-8, 0xFFFFFFFF: none), input
///     ok      0x03  id u64, tokens u64, cost_micros u64, output
///     failed  0x04  id u64, tokens u64, cost_micros u64, error object (kind, code, message, source)
///     cancel  0x05  id u64
///
/// JSON frames by `op`: `init` (host → runner: protocol, config), `ready` (runner → host:
/// protocol, manifest, abi, refreshes), `error`, `log`; since protocol 3 `tools` (runner → host:
/// the instance's new manifest after an ABI 1.1 `tools_changed`) and `refresh` (host → runner:
/// a reload left the driver unchanged).
///
/// Integers are little-endian: both ends are the same binary on the same machine.
///
/// Why this and not a shared-memory ring with an eventfd (issue 15): a call's overhead is
/// wake-ups, not copying. A ring still needs an eventfd write and read per direction to wake a
/// sleeping peer (the syscalls a socket costs), unless a side polls; and polling works as well
/// on the socket (a `recv` with MSG_DONTWAIT costs well under a µs), so the socket stays.
///
/// How a call crosses (issue 15, second step): the wake-ups are what cost (tens of µs each on
/// a busy 2-core host), so both sides poll for a bounded time where the next frame is due soon:
///
///   * The runner's reader gives each call to the driver on its own thread (the result goes back
///     from the thread that completes it) and, after each frame, polls the socket (recv with
///     MSG_DONTWAIT, sched_yield between polls) for up to `DriverRunner.spinNanos` (100 µs)
///     before it blocks in `read`: the next call of a busy caller finds it awake.
///   * On the host, a call that is the only one in flight takes the socket's read token, sends,
///     and polls for its own result on the calling thread for up to
///     `ProcessDriver.callerSpinNanos` (50 µs); the result is returned there, without waking
///     the host's reader thread or resuming a suspended task. The reader thread sleeps in epoll,
///     and the polling caller switches its watch off meanwhile, so it is not woken for frames
///     the caller reads. A caller that does not get its result in time registers a continuation
///     and hands the socket back to the reader thread (the previous path). Concurrent calls
///     take that path too: their frames arrive together and one read hands them all out.
///   * After `spinMissLimit` (4) polls in a row that missed (a driver slower than 50 µs), calls
///     stop polling except one in `spinProbeEvery` (32), so a slow driver costs little CPU.
///     A polling caller holds its cooperative-pool thread for at most 50 µs, as a short
///     computation would, and yields the CPU between polls, so on 2 cores the runner (and
///     anything else) still gets to run.
///
/// An idle runner polls once for at most 100 µs after its last frame, then sleeps in `read`;
/// the host's reader thread never polls (it sleeps in epoll): idle CPU stays zero (the test
/// `anIdleRunnerAndItsReaderDoNotSpin` checks their CPU time over a second of idleness).
/// `nova-bench reload` on the 2-core VM, old and new binaries alternating, 5 rounds each
/// (medians): sequential echo calls +10.4 µs over in process (before: +92.0 µs; rounds
/// +9.2 to +11.9 against +81.7 to +117.9); 16 concurrent callers unchanged, +9.5 against
/// +9.3 µs per call (wall time per call over all callers). On a VM busy with other builds
/// the polls lose the CPU more often: +14 to +25 µs then (before: +25 to +41 µs).
///
/// Before the first step: 2 sends, 4 reads, about 5 futex calls, JSON parsed and
/// re-serialized twice per direction, and four thread wake-ups per call. The first step made
/// calls and results binary (no JSON on the call path), one send and one read per side, and
/// three wake-ups (runner reader, host reader, the resumed task); polling removes all three
/// when both sides are quick.
enum RunnerFrame {
    /// The protocol's version, exchanged in `init` and `ready`: a host and a runner of different
    /// builds refuse each other at start-up instead of misreading frames.
    static let version = 3

    enum Kind: UInt8 {
        case json = 1, call, ok, failed, cancel
    }

    /// A decoded frame.
    enum Message {
        case json(JSONValue)
        case call(id: UInt64, deadlineNanos: Int64?, tool: String, run: String?, input: [UInt8])
        case ok(id: UInt64, usage: ToolUsage, output: [UInt8])
        case failed(id: UInt64, usage: ToolUsage, error: JSONValue)
        case cancel(id: UInt64)
    }

    static func json(_ value: JSONValue) -> [UInt8] { [Kind.json.rawValue] + value.serializedBytes() }

    static func call(id: UInt64, deadlineNanos: Int64?, tool: String, run: String?, input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1 + 8 + 8 + 4 + tool.utf8.count + 4 + (run?.utf8.count ?? 0) + input.count)
        out.append(Kind.call.rawValue)
        append(id, to: &out)
        append(UInt64(bitPattern: deadlineNanos ?? 0), to: &out)
        append(UInt32(tool.utf8.count), to: &out)
        out += tool.utf8
        if let run {
            append(UInt32(run.utf8.count), to: &out)
            out += run.utf8
        } else {
            append(UInt32.max, to: &out)
        }
        out += input
        return out
    }

    static func ok(id: UInt64, usage: ToolUsage, output: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(25 + output.count)
        out.append(Kind.ok.rawValue)
        append(id, to: &out); append(usage.tokens, to: &out); append(usage.costMicros, to: &out)
        out += output
        return out
    }

    static func failed(id: UInt64, _ error: ToolCallError) -> [UInt8] {
        var out: [UInt8] = [Kind.failed.rawValue]
        append(id, to: &out); append(error.usage.tokens, to: &out); append(error.usage.costMicros, to: &out)
        let object: JSONValue = ["kind": .string(error.kind.rawValue), "code": .string(error.code), "message": .string(error.message),
                                 "source": .string(error.source)]
        return out + object.serializedBytes()
    }

    static func cancel(id: UInt64) -> [UInt8] {
        var out: [UInt8] = [Kind.cancel.rawValue]
        append(id, to: &out)
        return out
    }

    /// Decodes a frame; nil if it is not one of ours (then it is skipped).
    static func decode(_ frame: [UInt8]) -> Message? {
        guard let first = frame.first, let kind = Kind(rawValue: first) else { return nil }
        var reader = Reader(frame, at: 1)
        switch kind {
        case .json:
            guard let value = try? JSONValue.parse(Array(frame[1...])) else { return nil }
            return .json(value)
        case .call:
            guard let id = reader.u64(), let deadline = reader.u64(), let tool = reader.string(), let runLength = reader.u32() else { return nil }
            var run: String?
            if runLength != UInt32.max {
                guard let r = reader.bytes(Int(runLength)) else { return nil }
                run = String(decoding: r, as: UTF8.self)
            }
            let d = Int64(bitPattern: deadline)
            return .call(id: id, deadlineNanos: d == 0 ? nil : d, tool: tool, run: run, input: reader.rest())
        case .ok, .failed:
            guard let id = reader.u64(), let tokens = reader.u64(), let cost = reader.u64() else { return nil }
            let usage = ToolUsage(tokens: tokens, costMicros: cost)
            if kind == .ok { return .ok(id: id, usage: usage, output: reader.rest()) }
            return .failed(id: id, usage: usage, error: (try? JSONValue.parse(reader.rest())) ?? [:])
        case .cancel:
            guard let id = reader.u64() else { return nil }
            return .cancel(id: id)
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }

    private struct Reader {
        let frame: [UInt8]
        var at: Int
        init(_ frame: [UInt8], at: Int) { self.frame = frame; self.at = at }

        mutating func bytes(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, frame.count - at >= n else { return nil }
            defer { at += n }
            return frame[at..<(at + n)]
        }
        mutating func u64() -> UInt64? {
            guard let b = bytes(8) else { return nil }
            return b.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        }
        mutating func u32() -> UInt32? {
            guard let b = bytes(4) else { return nil }
            return b.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        }
        mutating func string() -> String? {
            guard let n = u32(), let b = bytes(Int(n)) else { return nil }
            return String(decoding: b, as: UTF8.self)
        }
        mutating func rest() -> [UInt8] { at < frame.count ? Array(frame[at...]) : [] }
    }
}
