/// A keyed pseudonym (SPEC §3): the 32 bytes of an HMAC-SHA256, held inline as four words: no
/// heap, no reference counting, compared and hashed as integers. Text shows it as 64 lowercase
/// hex digits (`hex`), and only where text is written: exports, the cost-trend topic, logs; in
/// PostgreSQL it is 32 bytes of `bytea` (SPEC v1.2).
/// The words are the bytes read big-endian, so comparing pseudonyms orders them as their hex does.
public struct Pseudonym: Hashable, Comparable, Sendable, CustomStringConvertible {
    private var w0: UInt64
    private var w1: UInt64
    private var w2: UInt64
    private var w3: UInt64

    /// The pseudonym whose bytes these are (exactly 32).
    public init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "a pseudonym is 32 bytes")
        w0 = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        w1 = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        w2 = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        w3 = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    /// Parses 64 hex digits (either case), as stored in text columns and shown to users.
    public init?(hex: String) {
        var words: [UInt64] = [0, 0, 0, 0]
        var count = 0
        for c in hex.utf8 {
            guard count < 64, let d = JSONEscapes.hexDigit(c) else { return nil }
            words[count / 16] = words[count / 16] << 4 | UInt64(d)
            count += 1
        }
        guard count == 64 else { return nil }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    /// The 32 bytes, in order.
    public var bytes: [UInt8] { withBytes { Array($0) } }

    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let words = (w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)
        return try withUnsafeBytes(of: words, body)
    }

    /// Writes the 32 bytes into the first 32 bytes of `out` (a bytea value in place).
    @inline(__always)
    public func writeBytes(into out: UnsafeMutableRawBufferPointer) {
        out.storeBytes(of: w0.bigEndian, toByteOffset: 0, as: UInt64.self)
        out.storeBytes(of: w1.bigEndian, toByteOffset: 8, as: UInt64.self)
        out.storeBytes(of: w2.bigEndian, toByteOffset: 16, as: UInt64.self)
        out.storeBytes(of: w3.bigEndian, toByteOffset: 24, as: UInt64.self)
    }

    /// 64 lowercase hex digits.
    public var hex: String {
        String(unsafeUninitializedCapacity: 64) { out in
            writeHex(into: UnsafeMutableRawBufferPointer(out))
            return 64
        }
    }

    public var description: String { hex }

    /// Writes the 64 hex digits into the first 64 bytes of `out`.
    @inline(__always)
    public func writeHex(into out: UnsafeMutableRawBufferPointer) {
        Self.writeHex(w0, into: out, at: 0)
        Self.writeHex(w1, into: out, at: 16)
        Self.writeHex(w2, into: out, at: 32)
        Self.writeHex(w3, into: out, at: 48)
    }

    @inline(__always)
    private static func writeHex(_ word: UInt64, into out: UnsafeMutableRawBufferPointer, at start: Int) {
        let digits: StaticString = "0123456789abcdef"
        let table = digits.utf8Start
        for i in 0..<16 { out[start + i] = table[Int((word >> UInt64(60 - 4 * i)) & 0xF)] }
    }

    /// One word of the pseudonym, enough to hash by (the bytes are uniformly random).
    var hashWord: UInt64 { w0 }

    public static func < (a: Pseudonym, b: Pseudonym) -> Bool { (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3) }
}
