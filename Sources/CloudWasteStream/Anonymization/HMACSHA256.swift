import COpenSSL

/// Keyed HMAC-SHA256 (RFC 2104) from precomputed SHA-256 states: the key's inner pad block,
/// followed by each message prefix, and its outer pad block are hashed once, and each message
/// starts from a copy of those states (a plain struct copy). OpenSSL's EVP_MAC
/// re-initialisation duplicates two digest contexts per message, with an allocation and a
/// cleanse each; `bench-decode` measured 0.52 µs per pseudonym that way. The low-level SHA256_*
/// calls are deprecated in OpenSSL 3 but kept, and use the same SHA extensions.
/// Mutable scratch state: one instance belongs to one thread.
final class HMACSHA256 {
    /// The inner state after the pad block and prefix `i`, per prefix.
    private var prefixedInner: [SHA256_CTX]
    private var outer = SHA256_CTX()
    private var scratch = SHA256_CTX()

    /// A MAC under `key` of messages that each start with one of `prefixes`.
    init(key: [UInt8], prefixes: [[UInt8]]) {
        var block = key.count > 64 ? Self.digest(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        var inner = SHA256_CTX()
        SHA256_Init(&inner)
        SHA256_Update(&inner, block.map { $0 ^ 0x36 }, 64)
        prefixedInner = prefixes.map { prefix in
            var state = inner
            SHA256_Update(&state, prefix, prefix.count)
            return state
        }
        SHA256_Init(&outer)
        SHA256_Update(&outer, block.map { $0 ^ 0x5C }, 64)
        block.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
        withUnsafeMutableBytes(of: &inner) { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

    deinit {
        for i in prefixedInner.indices { withUnsafeMutableBytes(of: &prefixedInner[i]) { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        withUnsafeMutableBytes(of: &outer) { OPENSSL_cleanse($0.baseAddress, $0.count) }
        withUnsafeMutableBytes(of: &scratch) { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

    private static func digest(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            sha256(bytes, into: out)
            count = 32
        }
    }

    /// HMAC(key, prefixes[prefix] + message).
    func pseudonym(prefix: Int, message: UnsafeBufferPointer<UInt8>) -> Pseudonym {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { out in
            scratch = prefixedInner[prefix]
            _ = SHA256_Update(&scratch, message.baseAddress, message.count)
            _ = SHA256_Final(out.baseAddress, &scratch)
            scratch = outer
            _ = SHA256_Update(&scratch, out.baseAddress, 32)
            _ = SHA256_Final(out.baseAddress, &scratch)
            return Pseudonym(bytes: UnsafeRawBufferPointer(out))
        }
    }
}

/// Plain SHA-256, for key ids and payload fingerprints (never for identifiers).
public func sha256Hex(_ bytes: [UInt8]) -> String {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { out in
        sha256(bytes, into: out)
        return hexString(UnsafeBufferPointer(out))
    }
}

extension Pseudonym {
    /// The plain SHA-256 of `bytes`, for a name that must look like a pseudonym but stands for no
    /// identifier (a `forget` command's consent event). Never for identifiers: they are keyed.
    init(sha256Of bytes: [UInt8]) {
        self = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { out in
            sha256(bytes, into: out)
            return Pseudonym(bytes: UnsafeRawBufferPointer(out))
        }
    }
}

/// SHA-256 in a context on the stack, through the low-level calls (as `HMACSHA256`): OpenSSL 3's
/// `EVP_Digest` and one-shot `SHA256` fetch the algorithm and allocate a context, about ten
/// allocations a call, and every dead letter hashes its key and its payload.
private func sha256(_ bytes: [UInt8], into out: UnsafeMutableBufferPointer<UInt8>) {
    var context = SHA256_CTX()
    SHA256_Init(&context)
    _ = bytes.withUnsafeBytes { SHA256_Update(&context, $0.baseAddress, $0.count) }
    SHA256_Final(out.baseAddress, &context)
}

/// Incremental SHA-256 for files streamed to disk (export manifests).
public final class SHA256Stream {
    private let ctx: OpaquePointer
    public init() {
        ctx = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }
    deinit { EVP_MD_CTX_free(ctx) }
    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { _ = EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) }
    }
    public func finalizeHex() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &out, &length)
        return hexString(out)
    }
}

/// Cryptographically random bytes (for generated demo keys).
public func secureRandomBytes(_ count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    precondition(RAND_bytes(&out, Int32(count)) == 1, "RAND_bytes failed")
    return out
}

private let hexDigits = Array("0123456789abcdef".utf8)

func hexString(_ bytes: [UInt8]) -> String {
    bytes.withUnsafeBufferPointer { hexString($0) }
}

func hexString(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
        for (i, b) in bytes.enumerated() {
            buffer[2 * i] = hexDigits[Int(b >> 4)]
            buffer[2 * i + 1] = hexDigits[Int(b & 0x0F)]
        }
        return bytes.count * 2
    }
}
