/// Keyed pseudonyms: `HMAC-SHA256(key, domain ":" normalize(id))` (SPEC §3), 32 bytes shown as
/// hex. Unkeyed hashes of 12-digit account ids fall to brute force; a keyed one does not without
/// the key.
/// Not thread-safe (its HMAC keeps scratch hash state): one per pipeline thread.
public final class Pseudonymizer {
    public enum Domain: String, Sendable, CaseIterable {
        case user, account, resource, scan, event

        var index: Int {
            switch self {
            case .user: 0
            case .account: 1
            case .resource: 2
            case .scan: 3
            case .event: 4
            }
        }
    }

    public let keyId: String
    /// The MAC, with each domain's `domain:` prefix absorbed once (indexed by `Domain.index`).
    private let hmac: HMACSHA256
    /// The recent ids of the domains whose ids recur from record to record (accounts and users;
    /// scans, whose findings come one after another, each naming the scan), by `Domain.index`.
    /// Event ids never recur and a resource's come a day apart: a cache would only miss.
    private let caches: [PseudonymCache?]

    public init(key: HMACKey) {
        keyId = key.keyId
        hmac = HMACSHA256(key: key.bytes, prefixes: Domain.allCases.map { Array("\($0.rawValue):".utf8) })
        caches = Domain.allCases.map { $0 == .account || $0 == .user || $0 == .scan ? PseudonymCache() : nil }
    }

    /// Lookups of the id caches that found the id, and that did not (for tests and `bench-decode`).
    public var cacheLookups: (hits: Int, misses: Int) {
        caches.reduce((0, 0)) { ($0.0 + ($1?.hits ?? 0), $0.1 + ($1?.misses ?? 0)) }
    }

    public func pseudonym(_ domain: Domain, _ id: String, provider: Provider? = nil) -> Pseudonym {
        var id = id
        return id.withUTF8 { pseudonym(domain, bytes: $0, provider: provider) }
    }

    /// The pseudonym of a decoded id: hashed now if the decoder kept its text, else as it is.
    public func pseudonym(_ domain: Domain, _ id: Identifier, provider: Provider? = nil) -> Pseudonym {
        switch id {
        case .text(let text): pseudonym(domain, text, provider: provider)
        case .pseudonym(let done): done
        }
    }

    /// The pseudonym of an id given as its UTF-8 bytes (valid UTF-8, e.g. in a message's buffer).
    public func pseudonym(_ domain: Domain, bytes: UnsafeBufferPointer<UInt8>, provider: Provider? = nil) -> Pseudonym {
        let lowercaseAll = provider == .azure && (domain == .account || domain == .resource)
        guard let cache = caches[domain.index] else { return hashed(domain, bytes: bytes, lowercaseAll: lowercaseAll) }
        return cache.pseudonym(of: bytes, variant: lowercaseAll ? 1 : 0) { hashed(domain, bytes: bytes, lowercaseAll: lowercaseAll) }
    }

    /// `pseudonym(_:bytes:provider:)` without the cache.
    func hashed(_ domain: Domain, bytes: UnsafeBufferPointer<UInt8>, lowercaseAll: Bool) -> Pseudonym {
        let prefix = domain.index
        // Fast path: nothing to trim, no upper-case hex in a GUID-sized id, not Azure.
        if !lowercaseAll, let first = bytes.first, let last = bytes.last, first > 0x20, first < 0x7F, last > 0x20, last < 0x7F,
           bytes.count < 36 || !bytes.contains(where: { $0 >= 65 && $0 <= 70 }) {
            return hmac.pseudonym(prefix: prefix, message: bytes)
        }
        // ASCII (every id the generator and the scanners we know send): normalized in a buffer on
        // the stack, as `normalize` would.
        if !bytes.contains(where: { $0 >= 0x80 }) {
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) { buffer in
                hmac.pseudonym(prefix: prefix, message: Self.normalizeASCII(bytes, lowercaseAll: lowercaseAll, into: buffer))
            }
        }
        return Self.normalize(String(decoding: bytes, as: UTF8.self), lowercaseAll: lowercaseAll)
            .withUnsafeBufferPointer { hmac.pseudonym(prefix: prefix, message: $0) }
    }

    /// `normalize` for ASCII bytes, written into `buffer` (at least as long): the normalized id.
    static func normalizeASCII(_ bytes: UnsafeBufferPointer<UInt8>, lowercaseAll: Bool,
                               into buffer: UnsafeMutableBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        // Unicode's white space within ASCII: tab, line feed, vertical tab, form feed, return, space.
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }
        var start = 0, end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        let out = UnsafeMutableBufferPointer(rebasing: buffer[0..<(end - start)])
        for i in out.indices {
            let c = bytes[start + i]
            out[i] = lowercaseAll && c >= 65 && c <= 90 ? c + 32 : c
        }
        if !lowercaseAll { lowercaseGUIDs(out) }
        return UnsafeBufferPointer(out)
    }

    /// Trims surrounding white space; lowercases GUID-shaped runs (8-4-4-4-12 hex digits, wherever
    /// they stand); lowercases everything when `lowercaseAll` (Azure ids are case-insensitive).
    /// Nothing else changes: AWS ARNs and GCP names are case-sensitive.
    public static func normalize(_ id: String, lowercaseAll: Bool) -> [UInt8] {
        let trimmed = trimWhitespace(id)
        if lowercaseAll { return Array(trimmed.lowercased().utf8) }
        var bytes = Array(trimmed.utf8)
        bytes.withUnsafeMutableBufferPointer { lowercaseGUIDs($0) }
        return bytes
    }

    static func trimWhitespace(_ s: String) -> Substring {
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return Substring(scalars[first...last])
    }

    private static func isHex(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
    }

    static func lowercaseGUIDs(_ b: UnsafeMutableBufferPointer<UInt8>) {
        let groups = [8, 4, 4, 4, 12]
        guard b.count >= 36 else { return }
        var i = 0
        while i + 36 <= b.count {
            if i > 0 && isHex(b[i - 1]) { i += 1; continue }
            var j = i
            var ok = true
            for (g, len) in groups.enumerated() {
                for _ in 0..<len {
                    if !isHex(b[j]) { ok = false; break }
                    j += 1
                }
                if !ok { break }
                if g < 4 {
                    if b[j] != 45 { ok = false; break }
                    j += 1
                }
            }
            if ok && (j == b.count || !isHex(b[j])) {
                for k in i..<j where b[k] >= 65 && b[k] <= 70 { b[k] += 32 }
                i = j
            } else {
                i += 1
            }
        }
    }
}
