import COpenSSL

/// Keyed HMAC-SHA256 through OpenSSL's EVP_MAC API. The context is keyed once and re-initialised
/// per message (about 6× faster than one-shot `HMAC()`), so one instance belongs to one thread.
final class HMACSHA256 {
    private let mac: OpaquePointer
    private let ctx: OpaquePointer

    init(key: [UInt8]) {
        mac = EVP_MAC_fetch(nil, "HMAC", nil)!
        ctx = EVP_MAC_CTX_new(mac)!
        var digest = Array("SHA256".utf8CString)
        let ok = digest.withUnsafeMutableBufferPointer { name -> Int32 in
            var params = [
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.baseAddress, 0),
                OSSL_PARAM_construct_end(),
            ]
            return key.withUnsafeBufferPointer { EVP_MAC_init(ctx, $0.baseAddress, $0.count, &params) }
        }
        precondition(ok == 1, "EVP_MAC_init failed")
    }

    deinit {
        EVP_MAC_CTX_free(ctx)
        EVP_MAC_free(mac)
    }

    /// Lowercase hex of HMAC(key, prefix + message).
    func hex(prefix: [UInt8], message: UnsafeBufferPointer<UInt8>) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { out in
            var length = 0
            EVP_MAC_init(ctx, nil, 0, nil)
            prefix.withUnsafeBufferPointer { _ = EVP_MAC_update(ctx, $0.baseAddress, $0.count) }
            _ = EVP_MAC_update(ctx, message.baseAddress, message.count)
            EVP_MAC_final(ctx, out.baseAddress, &length, 32)
            return hexString(UnsafeBufferPointer(out))
        }
    }
}

/// Plain SHA-256, for key ids and payload fingerprints (never for identifiers).
public func sha256Hex(_ bytes: [UInt8]) -> String {
    var out = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    bytes.withUnsafeBufferPointer { _ = EVP_Digest($0.baseAddress, $0.count, &out, &length, EVP_sha256(), nil) }
    return hexString(out)
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
