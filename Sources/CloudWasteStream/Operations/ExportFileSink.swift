import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where one exported file's bytes go: into `name.partial`, gzip-compressed in process by zlib
/// when asked (a gzip member with no name and no time stamp, like `gzip -n`, so the same rows give
/// the same bytes). Buffered in 256 KiB chunks: memory stays constant whatever the file's size.
final class ExportFileSink {
    let partialPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var stream: UnsafeMutablePointer<z_stream>?
    private var deflated: [UInt8] = []
    private var finished = false
    private static let chunkSize = 256 * 1024

    init(partialPath: String, gzip: Bool) throws(ExportError) {
        self.partialPath = partialPath
        fd = open(partialPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ExportError(runtime: "cannot create \(partialPath): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(Self.chunkSize + 64 * 1024)
        guard gzip else { return }
        let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        s.initialize(to: z_stream())
        guard CZlib_deflateInitGzip(s, 6) == Z_OK else {
            s.deallocate()
            close(fd); unlink(partialPath)
            throw ExportError(runtime: "cannot start gzip compression (zlib)")
        }
        stream = s
        deflated = [UInt8](repeating: 0, count: Self.chunkSize)
    }

    deinit { abort() }

    func write(_ bytes: [UInt8]) throws(ExportError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.chunkSize { try flush(finishing: false) }
    }

    /// Compresses (when gzip) and writes what is buffered; `finishing` ends the gzip member.
    private func flush(finishing: Bool) throws(ExportError) {
        guard let stream else {
            try writeOut(buffer[...])
            buffer.removeAll(keepingCapacity: true)
            return
        }
        var failure: ExportError?
        buffer.withUnsafeMutableBufferPointer { input in
            stream.pointee.next_in = input.baseAddress
            stream.pointee.avail_in = uInt(input.count)
            repeat {
                let produced: Int = deflated.withUnsafeMutableBufferPointer { out in
                    stream.pointee.next_out = out.baseAddress
                    stream.pointee.avail_out = uInt(out.count)
                    let rc = deflate(stream, finishing ? Z_FINISH : Z_NO_FLUSH)
                    if rc == Z_STREAM_ERROR { failure = ExportError(runtime: "gzip compression failed writing \(partialPath)") }
                    return out.count - Int(stream.pointee.avail_out)
                }
                if failure != nil { return }
                do { try writeOut(deflated[0..<produced]) } catch let e as ExportError { failure = e; return } catch { return }
            } while stream.pointee.avail_out == 0 || (finishing && stream.pointee.avail_in > 0)
        }
        stream.pointee.next_in = nil
        if let failure { throw failure }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeOut(_ bytes: ArraySlice<UInt8>) throws(ExportError) {
        let failure: Int32? = bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return n < 0 ? errno : EIO }
            }
            return nil
        }
        if let failure { throw ExportError(runtime: "cannot write \(partialPath): \(String(cString: strerror(failure)))") }
    }

    /// Writes what is left (and the gzip trailer), then fsyncs and closes the file.
    func finish() throws(ExportError) {
        try flush(finishing: true)
        endStream()
        guard fsync(fd) == 0 else { throw ExportError(runtime: "cannot write \(partialPath): \(String(cString: strerror(errno)))") }
        let closed = close(fd)
        fd = -1
        guard closed == 0 else { throw ExportError(runtime: "cannot write \(partialPath): \(String(cString: strerror(errno)))") }
        finished = true
    }

    /// Closes and deletes the partial file. Safe to call more than once.
    func abort() {
        endStream()
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !finished {
            finished = true
            unlink(partialPath)
        }
    }

    private func endStream() {
        guard let stream else { return }
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        self.stream = nil
    }
}
