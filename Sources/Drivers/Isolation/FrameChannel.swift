#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Length-framed JSON over a stream socket: a 4-byte big-endian length, then that many bytes.
/// Used between the host and a driver runner child over a socketpair.
final class FrameChannel: Sendable {
    /// The largest frame either side accepts (64 MiB): a corrupt length never makes us allocate
    /// gigabytes.
    static let maxFrame = 64 << 20

    let fd: Int32
    private let writeLock = Mutex(())

    init(fd: Int32) { self.fd = fd }

    /// Sends one frame; false if the peer is gone.
    @discardableResult
    func send(_ payload: [UInt8]) -> Bool {
        var frame = [UInt8](repeating: 0, count: 4)
        let n = UInt32(payload.count)
        frame[0] = UInt8(n >> 24); frame[1] = UInt8((n >> 16) & 0xFF); frame[2] = UInt8((n >> 8) & 0xFF); frame[3] = UInt8(n & 0xFF)
        frame.append(contentsOf: payload)
        return writeLock.withLock { _ in
            frame.withUnsafeBytes { buf in
                var off = 0
                while off < buf.count {
                    let w = Glibc.send(fd, buf.baseAddress! + off, buf.count - off, Int32(MSG_NOSIGNAL))
                    if w < 0 { if errno == EINTR { continue }; return false }
                    off += w
                }
                return true
            }
        }
    }

    /// Blocks until a whole frame arrives; nil at end of stream or on error.
    func receive() -> [UInt8]? {
        var header = [UInt8](repeating: 0, count: 4)
        guard readFully(&header) else { return nil }
        let n = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard n <= Self.maxFrame else { return nil }
        var payload = [UInt8](repeating: 0, count: n)
        guard n == 0 || readFully(&payload) else { return nil }
        return payload
    }

    private func readFully(_ buffer: inout [UInt8]) -> Bool {
        let count = buffer.count
        return buffer.withUnsafeMutableBytes { buf in
            var off = 0
            while off < count {
                let r = read(fd, buf.baseAddress! + off, count - off)
                if r < 0 { if errno == EINTR { continue }; return false }
                if r == 0 { return false }
                off += r
            }
            return true
        }
    }

    func close() { _ = Glibc.close(fd) }
}
