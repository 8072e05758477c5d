public import CloudWastePostgres

/// How a pseudonym reaches PostgreSQL (SPEC v1.2): the pseudonym columns are `bytea` holding its
/// 32 bytes (a CHECK per column, `<column>_is_pseudonym`, enforces the length). Binary COPY rows
/// carry the bytes as they are; binds carry bytea's text form, `\x` and the 64 hex digits. Text
/// outputs read the columns back through `encode(…, 'hex')` (`PseudonymStorage`), so what users
/// see does not change.
extension PostgresBinaryCopyEncoder {
    mutating func pseudonym(_ p: Pseudonym?) {
        guard let p else { return null() }
        value(byteCount: 32) { p.writeBytes(into: $0) }
    }
}

extension Pseudonym: PostgresTextEncodable {
    /// bytea's text input, `\x` followed by the hex digits: for bind parameters only (in a COPY
    /// text row the backslash would be read as an escape).
    public var postgresText: String { "\\x" + hex }

    /// `"\\x…"` in a `bytea[]` bind, the digits written from the words straight into the
    /// literal: a batch binds thousands, and a String per element cost more than the query.
    public func appendArrayElement(to literal: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: 69, alignment: 1) { element in
            element[0] = UInt8(ascii: "\"")
            element[1] = UInt8(ascii: "\\")
            element[2] = UInt8(ascii: "\\")
            element[3] = UInt8(ascii: "x")
            writeHex(into: UnsafeMutableRawBufferPointer(rebasing: element[4..<68]))
            element[68] = UInt8(ascii: "\"")
            literal.append(contentsOf: UnsafeRawBufferPointer(element))
        }
    }
}

/// How a schema's pseudonym columns hold their values: 32 bytes of `bytea` from migration 8 on,
/// 64 hex digits of text before it. `export` and `dataset` do not migrate (they only read), so a
/// cron job running this version against a database not yet migrated must still write the same
/// files: they read either form, as the same hex text.
public enum PseudonymStorage: Sendable {
    case bytes
    case hexText

    /// From the catalog: the type of the column `table.column` of `schema`.
    init(type: String) { self = type == "bytea" ? .bytes : .hexText }

    static func of(table: String, column: String, schema: String, in db: PostgresConnection) throws -> PseudonymStorage {
        let result = try db.query("""
            SELECT data_type FROM information_schema.columns
             WHERE table_schema = \(schema) AND table_name = \(table) AND column_name = \(column)
            """)
        return PseudonymStorage(type: result.rowCount == 0 ? "bytea" : try result.decode(String.self))
    }

    /// The column's value as users see it: 64 lowercase hex digits, ordered as bytes.
    func hex(_ column: PostgresQuery) -> PostgresQuery {
        switch self {
        case .bytes: "encode(\(column), 'hex')"
        case .hexText: column
        }
    }

    /// The pseudonym's first 32 bits as a bigint (the dataset's split rule).
    func first32Bits(_ column: PostgresQuery) -> PostgresQuery {
        switch self {
        case .bytes: "('x' || encode(substring(\(column) FROM 1 FOR 4), 'hex'))::bit(32)::bigint"
        case .hexText: "('x' || substr(\(column), 1, 8))::bit(32)::bigint"
        }
    }
}
