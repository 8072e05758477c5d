public import CloudWastePostgres
import Foundation

/// Stand-ins for pseudonyms in hand-written rows. A pseudonym column takes exactly 32 bytes
/// (SPEC v1.2), so a readable label ("A", "r1") is stored as its UTF-8 bytes padded with zeros to
/// 32: it reads back to the label, and labels keep their order.
public enum TestPseudonym {
    /// The 64 hex digits (what a text column held before migration 8, and what outputs show).
    public static func hex(_ label: String) -> String {
        let bytes = Array(label.utf8)
        precondition(bytes.count <= 32, "a label of at most 32 bytes")
        return (bytes + [UInt8](repeating: 0, count: 32 - bytes.count)).map { String(format: "%02x", $0) }.joined()
    }

    /// bytea's text input (`\x` and the hex digits), for binds into pseudonym columns.
    public static func bytea(_ label: String) -> String { "\\x" + hex(label) }

    /// The label of a stored stand-in, given as hex or as bytea text (`\x…`).
    public static func label(_ stored: String) -> String {
        let hex = stored.hasPrefix("\\x") ? String(stored.dropFirst(2)) : stored
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex, let next = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex),
              let byte = UInt8(hex[i..<next], radix: 16) {
            if byte != 0 { bytes.append(byte) }
            i = next
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension TestPseudonym {
    /// The same stand-in computed in SQL from a text expression (`'s' || i`).
    public static func sql(_ label: String) -> PostgresQuery {
        "overlay(decode(repeat('00', 32), 'hex') PLACING convert_to(\(PostgresQuery(unsafeSQL: label)), 'UTF8') FROM 1)"
    }

    /// SQL that reads a stand-in column back as its label.
    public static func labelSQL(_ column: String) -> PostgresQuery {
        "convert_from(rtrim(\(PostgresIdentifier(column)), '\\x00'::bytea), 'UTF8')"
    }
}
