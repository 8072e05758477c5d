import Glibc

/// A scan record's tag keys as SPEC §3 keeps them (lower-cased, de-duplicated, sorted), built
/// while the record is decoded and held in one byte array laid out as binary COPY's `text[]`
/// elements (each a 4-byte big-endian length, then its UTF-8), so that a row writes them in one
/// copy. A record's keys used to be a `[String]` that was copied, lower-cased, sorted and
/// destroyed key by key, a fifth of the runtime's reference-counting calls per record (issue #19).
///
/// Plain ASCII keys, all that scanners send in practice, are lower-cased and placed in byte order
/// as they are read. A record with any other key takes the String rule for all its keys
/// (`String.lowercased()`, String order and equality), which gives the same result as before.
public struct TagKeys: Equatable, Sendable, ExpressibleByArrayLiteral {
    /// The keys in order, each as a `text[]` element.
    private(set) var elements: [UInt8]
    /// How many keys `elements` holds.
    public private(set) var count: Int = 0

    public init() { elements = [] }

    /// No keys, in `storage` emptied (a recycled array keeps its capacity). Consumed, and callers
    /// hand it over with `consume`: were a reference kept anywhere, emptying it would allocate a
    /// new buffer instead.
    init(reusing storage: consuming [UInt8]) {
        elements = consume storage
        elements.removeAll(keepingCapacity: true)
    }

    /// The keys of `keys` under SPEC §3's rule (tests, tools and the Unicode path).
    public init(normalizing keys: [String], reusing storage: consuming [UInt8] = []) {
        self.init(reusing: consume storage)
        var lowered = keys.map { $0.lowercased() }
        lowered.sort()
        for (i, key) in lowered.enumerated() where i == 0 || lowered[i - 1] != key {
            var key = key
            key.withUTF8 { appendElement($0) }
        }
    }

    /// Keys already lower-cased, de-duplicated and sorted (tests): a literal of any other shape is
    /// a mistake in the test, not something to normalize quietly.
    public init(arrayLiteral keys: String...) {
        self.init(normalizing: keys)
        precondition(strings == keys, "tag keys \(keys) are not lower-cased, de-duplicated and sorted")
    }

    public var isEmpty: Bool { count == 0 }

    /// The keys as Strings, in order (tests and tools; the pipeline writes `elements`).
    public var strings: [String] {
        var out: [String] = []
        out.reserveCapacity(count)
        forEachKey { out.append(String(decoding: $0, as: UTF8.self)) }
        return out
    }

    /// Adds an ASCII key, lower-cased, at its place in byte order, unless it is there already.
    mutating func insert(lowercasingASCII key: UnsafeBufferPointer<UInt8>) {
        let oldEnd = elements.count
        appendElement(key)
        let inserted = elements.withUnsafeMutableBufferPointer { e -> Bool in
            let newKey = UnsafeMutableBufferPointer(rebasing: e[(oldEnd + 4)...])
            for i in newKey.indices { newKey[i] = asciiLowercased(newKey[i]) }
            // Where it goes: before the first key that sorts after it.
            var at = 0
            while at < oldEnd {
                let length = Self.length(at: at, in: UnsafeBufferPointer(e))
                let existing = UnsafeBufferPointer(rebasing: e[(at + 4)..<(at + 4 + length)])
                let order = Self.compare(existing, UnsafeBufferPointer(newKey))
                if order == 0 { return false }
                if order > 0 { break }
                at += 4 + length
            }
            if at < oldEnd { Self.rotate(e, moving: oldEnd..<e.count, to: at) }
            return true
        }
        if !inserted {
            elements.removeLast(elements.count - oldEnd)
            count -= 1
        }
    }

    /// Calls `body` with each key's UTF-8, in order.
    func forEachKey(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        elements.withUnsafeBufferPointer { e in
            var at = 0
            while at < e.count {
                let length = Self.length(at: at, in: e)
                body(UnsafeBufferPointer(rebasing: e[(at + 4)..<(at + 4 + length)]))
                at += 4 + length
            }
        }
    }

    private mutating func appendElement(_ key: UnsafeBufferPointer<UInt8>) {
        withUnsafeBytes(of: UInt32(key.count).bigEndian) { elements.append(contentsOf: $0) }
        elements.append(contentsOf: key)
        count += 1
    }

    private static func length(at i: Int, in e: UnsafeBufferPointer<UInt8>) -> Int {
        Int(e[i]) << 24 | Int(e[i + 1]) << 16 | Int(e[i + 2]) << 8 | Int(e[i + 3])
    }

    /// Byte order (for ASCII, String order): negative, zero or positive.
    private static func compare(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        for i in 0..<min(a.count, b.count) where a[i] != b[i] { return Int(a[i]) - Int(b[i]) }
        return a.count - b.count
    }

    /// Moves the bytes of `range` (the buffer's tail) to start at `at`, shifting what was between.
    private static func rotate(_ e: UnsafeMutableBufferPointer<UInt8>, moving range: Range<Int>, to at: Int) {
        let base = UnsafeMutableRawPointer(e.baseAddress!)
        withUnsafeTemporaryAllocation(byteCount: range.count, alignment: 1) { saved in
            saved.baseAddress!.copyMemory(from: base + range.lowerBound, byteCount: range.count)
            memmove(base + at + range.count, base + at, range.lowerBound - at)  // the two overlap
            (base + at).copyMemory(from: saved.baseAddress!, byteCount: range.count)
        }
    }
}
