#if canImport(Glibc)
import Glibc
#endif
import CHostSupport
import Synchronization

/// Length-framed messages over a stream socket: a 4-byte big-endian length, then that many
/// bytes. Used between the host and a driver runner child over a socketpair.
///
/// One `send` is one `sendmsg`; `receive` reads whatever the socket holds into a buffer and
/// hands out the frames in it, so a frame usually costs one `read`, and frames that arrive
/// together cost one `read` between them.
final class FrameChannel: Sendable {
    /// The largest frame either side accepts (64 MiB): a corrupt length never makes us allocate
    /// gigabytes.
    static let maxFrame = 64 << 20

    let fd: Int32
    private let writeLock = Mutex(())
    /// Used by one thread at a time: the runner's reader; on the host, whoever holds the
    /// `ProcessDriver`'s read token.
    private let input = ReadBuffer()

    init(fd: Int32) { self.fd = fd }

    /// Sends one frame; false if the peer is gone.
    @discardableResult
    func send(_ payload: [UInt8]) -> Bool {
        var header = UInt32(payload.count).bigEndian
        return writeLock.withLock { _ in
            withUnsafeBytes(of: &header) { head in
                payload.withUnsafeBytes { body in sendAll(head, body) }
            }
        }
    }

    /// Writes `head` then `body` in one `sendmsg`; if the socket takes only part, the rest
    /// follows with `send`.
    private func sendAll(_ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) -> Bool {
        let total = head.count + body.count
        var vectors = (iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
                       iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress), iov_len: body.count))
        var done = withUnsafeMutableBytes(of: &vectors) { raw -> Int in
            var message = msghdr()
            message.msg_iov = raw.baseAddress!.assumingMemoryBound(to: iovec.self)
            message.msg_iovlen = body.isEmpty ? 1 : 2
            return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
        }
        if done == total { return true }
        if done < 0 {
            guard errno == EINTR else { return false }
            done = 0
        }
        while done < total {
            let (part, offset) = done < head.count ? (head, done) : (body, done - head.count)
            let w = Glibc.send(fd, part.baseAddress! + offset, part.count - offset, Int32(MSG_NOSIGNAL))
            if w < 0 { if errno == EINTR { continue }; return false }
            done += w
        }
        return true
    }

    /// Blocks until a whole frame arrives; nil at end of stream or on error.
    func receive() -> [UInt8]? { input.frame(from: fd) }

    /// What a receive that must not wait found.
    enum Polled {
        case frame([UInt8])
        /// Nothing to read yet.
        case empty
        /// End of stream or an error.
        case closed
    }

    /// A frame if one has (begun to) arrive, without waiting for one that has not: the rest of
    /// a frame whose first bytes are here is waited for (the peer is writing it).
    func poll() -> Polled { input.poll(fd) }

    /// A frame already read from the socket and not handed out yet (completing it if only its
    /// first bytes are here); nil if the buffer is empty. A reader that stops reading hands
    /// these out first: nothing wakes a thread for bytes that have left the socket.
    func buffered() -> [UInt8]? { input.isEmpty ? nil : input.frame(from: fd) }

    /// Waits for a frame by polling for up to `spinNanos` (yielding the CPU between polls),
    /// then by blocking. The poll finds a frame that follows soon without the cost of waking a
    /// sleeping thread; the bound keeps an idle reader asleep. nil at end of stream or on error.
    func receive(spinningFor spinNanos: Int64) -> [UInt8]? {
        if spinNanos > 0 {
            let until = nova_monotonic_ns() + spinNanos
            repeat {
                switch poll() {
                case .frame(let f): return f
                case .closed: return nil
                case .empty: sched_yield()
                }
            } while nova_monotonic_ns() < until
        }
        return receive()
    }

    func close() { _ = Glibc.close(fd) }
}

/// The receiving side's buffer: bytes read from the socket and not handed out yet.
private final class ReadBuffer: @unchecked Sendable {
    // @unchecked: used by one thread at a time (see `FrameChannel.input`); the host's read token
    // (an atomic exchange with acquire/release ordering) orders the threads that take turns.
    private var bytes = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0, end = 0

    var isEmpty: Bool { start == end }

    func poll(_ fd: Int32) -> FrameChannel.Polled {
        if start == end {
            if end == bytes.count { start = 0; end = 0 }
            while true {
                let r = bytes.withUnsafeMutableBytes { b in recv(fd, b.baseAddress! + end, b.count - end, Int32(MSG_DONTWAIT)) }
                if r > 0 { end += r; break }
                if r == 0 { return .closed }
                if errno == EINTR { continue }
                return errno == EAGAIN || errno == EWOULDBLOCK ? .empty : .closed
            }
        }
        guard let f = frame(from: fd) else { return .closed }
        return .frame(f)
    }

    func frame(from fd: Int32) -> [UInt8]? {
        guard fill(fd, atLeast: 4) else { return nil }
        let n = bytes.withUnsafeBytes { Int(UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: start, as: UInt32.self))) }
        guard n <= FrameChannel.maxFrame else { return nil }
        if 4 + n <= bytes.count {
            guard fill(fd, atLeast: 4 + n) else { return nil }
            let frame = Array(bytes[(start + 4)..<(start + 4 + n)])
            start += 4 + n
            if start == end { start = 0; end = 0 }
            return frame
        }
        // Larger than the buffer: what is buffered, then the rest straight into the frame.
        var frame = [UInt8](repeating: 0, count: n)
        let have = end - start - 4
        frame.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { buffered in
                out.baseAddress!.copyMemory(from: buffered.baseAddress! + start + 4, byteCount: have)
            }
        }
        start = 0; end = 0
        let complete = frame.withUnsafeMutableBytes { out -> Bool in
            var off = have
            while off < n {
                let r = read(fd, out.baseAddress! + off, n - off)
                if r < 0 { if errno == EINTR { continue }; return false }
                if r == 0 { return false }
                off += r
            }
            return true
        }
        return complete ? frame : nil
    }

    /// Reads until at least `count` bytes (≤ the buffer's size) are buffered; false at end of
    /// stream or on error.
    private func fill(_ fd: Int32, atLeast count: Int) -> Bool {
        if end - start >= count { return true }
        if start + count > bytes.count {
            // Move the partial frame to the front to make room for the rest of it.
            let have = end - start
            bytes.withUnsafeMutableBytes { b in _ = memmove(b.baseAddress!, b.baseAddress! + start, have) }
            start = 0; end = have
        }
        while end - start < count {
            let r = bytes.withUnsafeMutableBytes { b in read(fd, b.baseAddress! + end, b.count - end) }
            if r < 0 { if errno == EINTR { continue }; return false }
            if r == 0 { return false }
            end += r
        }
        return true
    }
}
