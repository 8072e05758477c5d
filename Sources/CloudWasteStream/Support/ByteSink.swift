/// Where text is written byte by byte: a COPY value being encoded in place
/// (`PostgresBinaryCopyEncoder`, Storage/PseudonymColumns.swift), or a plain byte array.
protocol ByteSink {
    mutating func appendByte(_ byte: UInt8)
    mutating func appendBytes(_ raw: UnsafeRawBufferPointer)
}

extension Array: ByteSink where Element == UInt8 {
    mutating func appendByte(_ byte: UInt8) { append(byte) }
    mutating func appendBytes(_ raw: UnsafeRawBufferPointer) { append(contentsOf: raw.assumingMemoryBound(to: UInt8.self)) }
}
