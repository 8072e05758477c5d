/// A composite primary key: one or two pseudonyms, a name and a number.
struct RowKey: Equatable, Sendable {
    var a: Pseudonym
    var b: Pseudonym?
    var name: String = ""
    var c: Int64 = 0
}

/// Primary key → slot of the row that holds it, for one table of a batch being built: a batch
/// keeps one row per key. Looked up once per row on the consumer thread, so it is an open-addressing
/// table (linear probing, a power-of-two capacity at most half full) hashed from the key's words
/// instead of a Dictionary, which seeded and finalized a SipHash state per row (3.5 % of
/// `bench-decode`). The hash chains a bijective mixer through the words, starting from a
/// per-process random seed: the pseudonyms are keyed HMACs, and the seed keeps the parts a sender
/// controls (metric names, timestamps) from being chosen to collide.
struct RowKeyIndex {
    private static let processSeed = UInt64.random(in: .min ... .max)
    private let seed = RowKeyIndex.processSeed

    private struct Entry {
        var key: RowKey
        var slot: Int
    }

    /// nil where a position is empty.
    private var entries: [Entry?] = []
    private(set) var count = 0

    init() {}

    /// Stores `slot` as `key`'s, returning the slot the key held before (nil if it was new).
    mutating func update(_ slot: Int, for key: RowKey) -> Int? {
        if (count + 1) * 2 > entries.count { grow() }
        var i = position(of: key)
        while let entry = entries[i] {
            if entry.key == key {
                entries[i]!.slot = slot
                return entry.slot
            }
            i = (i + 1) & (entries.count - 1)
        }
        entries[i] = Entry(key: key, slot: slot)
        count += 1
        return nil
    }

    /// Empties it, keeping its capacity.
    mutating func removeAll() {
        guard count > 0 else { return }
        for i in entries.indices where entries[i] != nil { entries[i] = nil }
        count = 0
    }

    /// The same keys with their slots mapped by `transform` (nil drops the key).
    func compactMapSlots(_ transform: (Int) -> Int?) -> RowKeyIndex {
        var out = RowKeyIndex()
        for case let entry? in entries {
            if let slot = transform(entry.slot) { _ = out.update(slot, for: entry.key) }
        }
        return out
    }

    private func position(of key: RowKey) -> Int {
        var h = Self.mix(seed ^ key.a.hashWord)
        if let b = key.b { h = Self.mix(h ^ b.hashWord) }
        h = Self.mix(h ^ UInt64(bitPattern: key.c))
        if !key.name.isEmpty { h = Self.mix(h ^ stableHash(key.name)) }
        return Int(truncatingIfNeeded: h) & (entries.count - 1)
    }

    /// SplitMix64's finalizer: a bijection that spreads every input bit over the word.
    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func grow() {
        let old = entries
        entries = [Entry?](repeating: nil, count: max(64, entries.count * 2))
        count = 0
        for case let entry? in old { _ = update(entry.slot, for: entry.key) }
    }
}
