import COpenSSL
import Foundation

/// The pseudonyms of the ids of one domain seen last, by their raw bytes. An account's, a user's
/// and a scan's ids recur in every record a scanner sends for them (a scan is hundreds of records
/// of one account and one user, each naming the scan), and a lookup (a hash of at most 62 bytes
/// and one comparison) costs a fraction of the HMAC-SHA256 it saves. Direct-mapped, with the
/// whole id compared, so a collision, even a hostile one, only costs a miss: the pseudonym is
/// always the id's own.
/// Holds raw ids in memory until other ids take their slots (docs/privacy.md), never writes them
/// anywhere, and wipes them when freed. Mutable state of one thread: one per `Pseudonymizer`.
final class PseudonymCache {
    /// Slots (a power of two): 128 KiB of keys and 64 KiB of pseudonyms.
    static let slotCount = 2048
    /// Longer ids are hashed every time (GUIDs, AWS account ids and e-mail addresses fit).
    static let maxIdBytes = 62
    /// A slot's key: its length (0: empty), the normalization variant, then the id's bytes.
    private static let keyStride = 64

    private let keys: UnsafeMutableRawPointer
    private let values: UnsafeMutablePointer<Pseudonym>
    private(set) var hits = 0
    private(set) var misses = 0

    init() {
        keys = .allocate(byteCount: Self.slotCount * Self.keyStride, alignment: 64)
        keys.initializeMemory(as: UInt8.self, repeating: 0, count: Self.slotCount * Self.keyStride)
        values = .allocate(capacity: Self.slotCount)
        let zero = [UInt8](repeating: 0, count: 32).withUnsafeBytes { Pseudonym(bytes: $0) }
        values.initialize(repeating: zero, count: Self.slotCount)
    }

    deinit {
        // The ids are raw identifiers: wiped, not just released (as the HMAC key's states are).
        OPENSSL_cleanse(keys, Self.slotCount * Self.keyStride)
        keys.deallocate()
        values.deallocate()
    }

    /// `id`'s pseudonym under normalization `variant`: the remembered one, or `compute()`'s,
    /// remembered in place of the slot's previous id.
    @inline(__always)
    func pseudonym(of id: UnsafeBufferPointer<UInt8>, variant: UInt8, compute: () -> Pseudonym) -> Pseudonym {
        guard let base = id.baseAddress, id.count > 0, id.count <= Self.maxIdBytes else { return compute() }
        let slot = Int(truncatingIfNeeded: Self.hash(id, variant: variant)) & (Self.slotCount - 1)
        let key = keys + slot * Self.keyStride
        if key.load(as: UInt8.self) == UInt8(id.count), key.load(fromByteOffset: 1, as: UInt8.self) == variant,
           memcmp(key + 2, base, id.count) == 0 {
            hits += 1
            return values[slot]
        }
        misses += 1
        let pseudonym = compute()
        key.storeBytes(of: UInt8(id.count), as: UInt8.self)
        key.storeBytes(of: variant, toByteOffset: 1, as: UInt8.self)
        (key + 2).copyMemory(from: base, byteCount: id.count)
        values[slot] = pseudonym
        return pseudonym
    }

    /// The slot hash of an id under `variant`: the project's `stableHash` (FNV-1a) of its bytes.
    @inline(__always)
    static func hash(_ id: UnsafeBufferPointer<UInt8>, variant: UInt8) -> UInt64 {
        stableHash(bytes: id) &+ UInt64(variant)
    }
}
