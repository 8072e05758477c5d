/// FNV-1a over UTF-8: the same 64-bit value in every process and run (Swift's `hashValue` is
/// seeded per process), for advisory-lock keys and partition-to-writer routing.
func stableHash(_ text: String) -> UInt64 { stableHash(bytes: text.utf8) }

func stableHash(bytes: some Sequence<UInt8>) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return h
}

/// A non-negative advisory-lock key for `name`.
func stableLockKey(_ name: String) -> Int64 { Int64(bitPattern: stableHash(name) & 0x7FFF_FFFF_FFFF_FFFF) }
