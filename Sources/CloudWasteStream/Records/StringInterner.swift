/// Shares one `String` among the records that repeat the same short value (resource types,
/// scenarios, regions, metric names, units…), so that decoding them allocates once per
/// distinct value instead of once per record. Bounded: it stops taking new values when full, so a
/// stream of ever-new values costs what it cost without it and never grows memory. One per
/// decoding thread (it is mutable, like the tape that holds it).
final class StringInterner {
    private struct Slot {
        var hash: UInt64
        var value: String
    }

    static let capacity = 4096
    static let maxLength = 64
    /// Allocated at the first value (a tape made for one document never needs it).
    private var slots: [Slot?] = []
    private var used = 0

    /// The shared String for these bytes (valid UTF-8, no escapes), creating it if needed. Up to
    /// 15 bytes a String holds its bytes inline (no heap, no reference count to share): those are
    /// made anew, which is cheaper than looking them up and costs nothing when they are copied.
    func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.count > 15, bytes.count <= Self.maxLength else { return String(decoding: bytes, as: UTF8.self) }
        if slots.isEmpty { slots = Array(repeating: nil, count: Self.capacity) }
        let hash = stableHash(bytes: bytes) | 1  // never 0
        var i = Int(truncatingIfNeeded: hash) & (Self.capacity - 1)
        while let slot = slots[i] {
            if slot.hash == hash, Self.equal(slot.value, bytes) { return slot.value }
            i = (i + 1) & (Self.capacity - 1)
        }
        let value = String(decoding: bytes, as: UTF8.self)
        if used < Self.capacity * 3 / 4 {
            slots[i] = Slot(hash: hash, value: value)
            used += 1
        }
        return value
    }

    private static func equal(_ s: String, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var s = s
        return s.withUTF8 { ShortBytes.equal($0, bytes) }
    }
}
