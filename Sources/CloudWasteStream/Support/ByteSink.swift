/// Where text is written byte by byte: memory reserved for it (`ReservedBytes`, the metrics
/// jsonb of a COPY row) or a plain byte array.
protocol ByteSink {
    mutating func appendByte(_ byte: UInt8)
    mutating func appendBytes(_ raw: UnsafeRawBufferPointer)
}

extension Array: ByteSink where Element == UInt8 {
    mutating func appendByte(_ byte: UInt8) { append(byte) }
    mutating func appendBytes(_ raw: UnsafeRawBufferPointer) { append(contentsOf: raw.assumingMemoryBound(to: UInt8.self)) }
}

/// Bytes written into memory reserved for them beforehand (e.g. a stack buffer sized for the
/// longest text), bounds-checked: stores, no calls.
struct ReservedBytes: ByteSink {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    @inline(__always)
    mutating func appendByte(_ byte: UInt8) {
        precondition(count < buffer.count, "text longer than the room reserved for it")
        buffer.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    mutating func appendBytes(_ raw: UnsafeRawBufferPointer) {
        precondition(raw.count <= buffer.count - count, "text longer than the room reserved for it")
        if raw.count > 0 { (buffer.baseAddress! + count).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        count += raw.count
    }
}
