/// One provider's region rules (a default, exact names, prefixes), matched on a region's bytes
/// where they are: a lookup hashes no String with SipHash, makes none and, the rules being one
/// immutable object, retains one reference. It was 2 % of `bench-decode`'s samples as a
/// `[String: String]` and `hasPrefix`. Prefixes match bytes, not characters: every region name of
/// the table is ASCII, and a region that is not can match a prefix that `hasPrefix` refused only
/// when what follows the prefix extends its last character (a combining mark, for instance).
final class RegionRules: Sendable {
    private struct Name {
        var start: Int32
        var count: Int32
        var bucket: Int32

        func bytes(in text: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: text[Int(start)..<Int(start + count)])
        }
    }

    let defaultBucket: String?
    /// Every name's bytes, back to back.
    private let text: [UInt8]
    private let buckets: [String]
    private let exact: [Name]
    /// Open addressing over `exact` (index, -1 empty): a power of two, at most half full.
    private let slots: [Int32]
    /// Longest first.
    private let prefixes: [Name]

    init(defaultBucket: String?, exact: [String: String], prefixes: [String: String]) {
        self.defaultBucket = defaultBucket
        var text: [UInt8] = []
        var buckets: [String] = []
        func name(_ s: String, _ bucket: String) -> Name {
            defer { text += s.utf8; buckets.append(bucket) }
            return Name(start: Int32(text.count), count: Int32(s.utf8.count), bucket: Int32(buckets.count))
        }
        let exactNames = exact.sorted { $0.key < $1.key }.map { name($0.key, $0.value) }
        self.prefixes = prefixes.sorted { ($0.key.utf8.count, $0.key) > ($1.key.utf8.count, $1.key) }.map { name($0.key, $0.value) }
        var slots = [Int32](repeating: -1, count: max(8, (exactNames.count * 2).nextPowerOf2))
        text.withUnsafeBufferPointer { t in
            for (i, n) in exactNames.enumerated() {
                var slot = Self.hash(n.bytes(in: t)) & (slots.count - 1)
                while slots[slot] >= 0 { slot = (slot + 1) & (slots.count - 1) }
                slots[slot] = Int32(i)
            }
        }
        self.text = text
        self.buckets = buckets
        self.exact = exactNames
        self.slots = slots
    }

    /// The bucket of a region name (trimmed, lower-case), nil when no rule knows it.
    func bucket(_ region: UnsafeBufferPointer<UInt8>) -> String? {
        if let defaultBucket { return defaultBucket }
        return text.withUnsafeBufferPointer { t -> String? in
            var slot = Self.hash(region) & (slots.count - 1)
            while slots[slot] >= 0 {
                let n = exact[Int(slots[slot])]
                if ShortBytes.equal(n.bytes(in: t), region) { return buckets[Int(n.bucket)] }
                slot = (slot + 1) & (slots.count - 1)
            }
            for n in prefixes where Int(n.count) <= region.count
                && ShortBytes.equal(n.bytes(in: t), UnsafeBufferPointer(rebasing: region[..<Int(n.count)])) {
                return buckets[Int(n.bucket)]
            }
            return nil
        }
    }

    /// The project's FNV-1a, its high bits folded into the low ones that pick a slot.
    private static func hash(_ name: UnsafeBufferPointer<UInt8>) -> Int {
        let h = stableHash(bytes: name)
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }
}

private extension Int {
    var nextPowerOf2: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
