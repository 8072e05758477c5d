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
/// `bench-decode`). The probed table holds only each key's hash, its row's slot and where the key
/// is (16 bytes a position, where whole keys made 112: the first probe of a new key misses the
/// cache either way, as the batch's tuples stream through it, and costs less in a small table);
/// the keys are appended in order and read only when a hash matches. The hash chains
/// a bijective mixer through the words, starting from a per-process random seed: the pseudonyms
/// are keyed HMACs, and the seed keeps the parts a sender controls (metric names, timestamps) from
/// being chosen to collide.
struct RowKeyIndex {
    private static let processSeed = UInt64.random(in: .min ... .max)
    private let seed = RowKeyIndex.processSeed

    private struct Position {
        var hash: UInt64 = 0
        /// Index of the key in `keys`; -1 where the position is empty.
        var key: Int32 = -1
        var slot: Int32 = 0
    }

    private var positions: [Position] = []
    /// The keys, in the order they were first stored.
    private var keys: [RowKey] = []

    init() {}

    var count: Int { keys.count }

    /// Stores `slot` as `key`'s, returning the slot the key held before (nil if it was new).
    mutating func update(_ slot: Int, for key: RowKey) -> Int? {
        if (keys.count + 1) * 2 > positions.count { grow() }
        let hash = hash(of: key)
        let mask = positions.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while positions[i].key >= 0 {
            if positions[i].hash == hash && keys[Int(positions[i].key)] == key {
                defer { positions[i].slot = Int32(slot) }
                return Int(positions[i].slot)
            }
            i = (i + 1) & mask
        }
        positions[i] = Position(hash: hash, key: Int32(keys.count), slot: Int32(slot))
        keys.append(key)
        return nil
    }

    /// Empties it, keeping its capacity.
    mutating func removeAll() {
        guard !keys.isEmpty else { return }
        for i in positions.indices { positions[i].key = -1 }
        keys.removeAll(keepingCapacity: true)
    }

    /// The same keys with their slots mapped by `transform` (nil drops the key).
    func compactMapSlots(_ transform: (Int) -> Int?) -> RowKeyIndex {
        var out = RowKeyIndex()
        for p in positions where p.key >= 0 {
            if let slot = transform(Int(p.slot)) { _ = out.update(slot, for: keys[Int(p.key)]) }
        }
        return out
    }

    private func hash(of key: RowKey) -> UInt64 {
        var h = Self.mix(seed ^ key.a.hashWord)
        if let b = key.b { h = Self.mix(h ^ b.hashWord) }
        h = Self.mix(h ^ UInt64(bitPattern: key.c))
        if !key.name.isEmpty { h = Self.mix(h ^ stableHash(key.name)) }
        return h
    }

    /// SplitMix64's finalizer: a bijection that spreads every input bit over the word.
    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Doubles the positions, placing every key again by its stored hash.
    private mutating func grow() {
        let old = positions
        positions = [Position](repeating: Position(), count: max(64, positions.count * 2))
        let mask = positions.count - 1
        for p in old where p.key >= 0 {
            var i = Int(truncatingIfNeeded: p.hash) & mask
            while positions[i].key >= 0 { i = (i + 1) & mask }
            positions[i] = p
        }
    }
}
