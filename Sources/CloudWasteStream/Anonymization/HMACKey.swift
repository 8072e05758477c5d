import Foundation

/// The secret behind every pseudonym (SPEC §3). At least 32 random bytes, written as hex (an even
/// number, at least 64, of hex digits) or as base64 with the prefix `base64:`; the form is never
/// guessed from the text, and a key that is obviously not random is refused, because a guessable
/// key brings back the brute force that keyed pseudonyms exist to prevent. `description` never
/// shows the key; `keyId` (first 8 hex characters of SHA-256(key)) marks every row, so a rotation
/// is visible.
public struct HMACKey: Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let keyId: String

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
        init(_ problem: String) {
            description = "\(problem); make one with `openssl rand -hex 32` (or `echo base64:$(openssl rand -base64 32)`)"
        }
    }

    public init(bytes: [UInt8]) throws(Invalid) {
        guard bytes.count >= 32 else {
            throw Invalid("the HMAC key has \(bytes.count) bytes; it needs at least 32 random bytes")
        }
        if let weakness = Self.weakness(bytes) { throw Invalid("the HMAC key is not random (\(weakness))") }
        self.bytes = bytes
        keyId = String(sha256Hex(bytes).prefix(8))
    }

    /// Why `bytes` cannot be a random key, if they cannot: every byte equal, a short pattern
    /// repeated, or printable text (a random 32-byte key is all printable with odds of 1 in 10^14).
    static func weakness(_ bytes: [UInt8]) -> String? {
        if Set(bytes).count == 1 { return "every byte is the same" }
        for period in 2...8 where bytes.indices.allSatisfy({ bytes[$0] == bytes[$0 % period] }) {
            return "a pattern of \(period) bytes repeated"
        }
        if bytes.allSatisfy({ (0x20...0x7E).contains($0) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return "it is printable text, not random bytes"
        }
        return nil
    }

    /// Parses `base64:…` or hex; surrounding white space is ignored (and line breaks inside base64).
    public init(text: String) throws(Invalid) {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.hasPrefix("base64:") {
            let body = String(t.dropFirst("base64:".count).filter { !$0.isWhitespace })  // PEM-style line breaks allowed
            guard let data = Data(base64Encoded: body) else {
                throw Invalid("the HMAC key after 'base64:' is not valid base64")
            }
            try self.init(bytes: [UInt8](data))
            return
        }
        let isHex = !t.isEmpty && t.unicodeScalars.allSatisfy { $0.isASCII && $0.properties.isASCIIHexDigit }
        guard isHex else {
            throw Invalid("the HMAC key is neither hex nor base64: give 64 or more hex digits, or base64 after the prefix 'base64:'")
        }
        guard t.count >= 64 else {
            throw Invalid("the HMAC key has \(t.count) hex digits (\(t.count / 2) bytes); it needs at least 64 (32 bytes)")
        }
        guard t.count % 2 == 0 else { throw Invalid("the HMAC key has an odd number of hex digits (\(t.count))") }
        var out: [UInt8] = []
        out.reserveCapacity(t.count / 2)
        var chars = t.utf8.makeIterator()
        while let hi = chars.next(), let lo = chars.next() {
            out.append(UInt8(Self.nibble(hi) << 4 | Self.nibble(lo)))
        }
        try self.init(bytes: out)
    }

    public static func load(file path: String) throws(Invalid) -> HMACKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Invalid("cannot read the HMAC key file \(path): check the path and its permissions")
        }
        do {
            return try HMACKey(text: String(decoding: data, as: UTF8.self))
        } catch {
            throw Invalid("in the key file \(path): " + error.description.components(separatedBy: "; make one").first!)
        }
    }

    public static func generate() -> HMACKey { try! HMACKey(bytes: secureRandomBytes(32)) }

    public var hex: String { hexString(bytes) }

    private static func nibble(_ c: UInt8) -> Int {
        switch c {
        case 48...57: Int(c - 48)
        case 65...70: Int(c - 55)
        default: Int(c - 87)
        }
    }

    public var description: String { "HMACKey(id: \(keyId))" }
}
