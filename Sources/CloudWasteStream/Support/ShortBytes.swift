/// Comparisons of short byte runs (field names, region names, interned values) inline, a word at a
/// time, instead of a call to libc's `memcmp`, whose set-up costs more than these few bytes: it was
/// 2 % of `bench-decode`'s samples. Reads only the `count` bytes of each side.
enum ShortBytes {
    @inline(__always)
    static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        if count >= 8 {
            var i = 0
            while i + 8 < count {
                if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
                i += 8
            }
            // The last eight bytes, overlapping the word before when count is not a multiple of 8.
            return a.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        }
        if count >= 4 {
            return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
                && a.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self) == b.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
        }
        for i in 0..<count where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        return true
    }

    /// A string literal's UTF-8 bytes, where the binary holds them.
    @inline(__always)
    static func of(_ literal: StaticString) -> UnsafeBufferPointer<UInt8> {
        precondition(literal.hasPointerRepresentation, "a string literal, not a single scalar")
        return UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
    }

    /// Whether two buffers hold the same bytes.
    @inline(__always)
    static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return true }
        return equal(pa, pb, count: a.count)
    }
}
