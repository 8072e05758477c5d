import Foundation

/// The secret behind every pseudonym. At least 32 bytes, given as hex or base64 in a file or in
/// `CLOUDWASTE_HMAC_KEY`. `description` never shows the key; `keyId` (first 8 hex characters of
/// SHA-256(key)) marks every row, so a rotation is visible.
public struct HMACKey: Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let keyId: String

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(bytes: [UInt8]) throws(Invalid) {
        guard bytes.count >= 32 else {
            throw Invalid(description: "the HMAC key has \(bytes.count) bytes; it needs at least 32 random bytes (e.g. `openssl rand -hex 32`)")
        }
        self.bytes = bytes
        keyId = String(sha256Hex(bytes).prefix(8))
    }

    /// Parses hex (64+ hex digits) or base64; surrounding white space is ignored.
    public init(text: String) throws(Invalid) {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.count % 2 == 0, t.count >= 64, t.unicodeScalars.allSatisfy { $0.isASCII && $0.properties.isASCIIHexDigit } {
            var out: [UInt8] = []
            var chars = t.utf8.makeIterator()
            while let hi = chars.next(), let lo = chars.next() {
                out.append(UInt8(Self.nibble(hi) << 4 | Self.nibble(lo)))
            }
            try self.init(bytes: out)
        } else if let data = Data(base64Encoded: String(t.filter { !$0.isWhitespace })) {  // PEM-style line breaks allowed
            try self.init(bytes: [UInt8](data))
        } else {
            throw Invalid(description: "the HMAC key is neither hex nor base64: give 32+ random bytes as hex (`openssl rand -hex 32`)")
        }
    }

    public static func load(file path: String) throws(Invalid) -> HMACKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Invalid(description: "cannot read the HMAC key file \(path): check the path and its permissions")
        }
        return try HMACKey(text: String(decoding: data, as: UTF8.self))
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
