/// An ISO 4217 currency code (three upper-case ASCII letters) as a 4-byte value: records, rows and
/// window detections copy it as plain bytes, where a `String` cost a runtime call at every copy
/// and destruction, and it made a window detection a type the sort of a batch's detections copied
/// through the runtime (issue #19).
public struct CurrencyCode: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The letters in the low three bytes, the first in the highest of them, so that comparing
    /// the words orders the codes.
    private let letters: UInt32

    public static let usd: CurrencyCode = "USD"

    /// nil unless `code` is three upper-case ASCII letters.
    init?(_ code: some Collection<UInt8>) {
        guard code.count == 3, code.allSatisfy({ $0 >= 65 && $0 <= 90 }) else { return nil }
        letters = code.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Tests and tools; a literal that is not a currency code is a programming error.
    public init(stringLiteral code: String) {
        guard let valid = CurrencyCode(code.utf8) else { preconditionFailure("not a currency code: \(code)") }
        self = valid
    }

    /// The code as text, for PostgreSQL parameters and logs.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// The three letters.
    var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 3) { buffer, count in
            write(to: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = 3
        }
    }

    /// Writes the three letters at `p`.
    func write(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: UInt8(truncatingIfNeeded: letters >> 16), as: UInt8.self)
        p.storeBytes(of: UInt8(truncatingIfNeeded: letters >> 8), toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: UInt8(truncatingIfNeeded: letters), toByteOffset: 2, as: UInt8.self)
    }

    public static func < (a: CurrencyCode, b: CurrencyCode) -> Bool { a.letters < b.letters }
}
