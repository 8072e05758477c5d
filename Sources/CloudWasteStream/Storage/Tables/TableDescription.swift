public import CloudWastePostgres

/// One column: its name and type as PostgreSQL knows them, and how a row writes its value in
/// binary COPY. Listing the columns once, in this form, is what keeps the staging table, the
/// COPY encoding and the upsert statement of a table from drifting apart. A class, immutable:
/// a row's encoding borrows each column from its table (`TableDescription.encode`) where a
/// struct's closure was retained and released around every call, two runtime calls per field.
public final class TableColumn<Row>: Sendable {
    public let name: String
    public let type: PostgresColumnType
    let encode: @Sendable (Row, inout PostgresBinaryCopyEncoder) -> Void

    init(_ name: String, _ type: PostgresColumnType, _ encode: @escaping @Sendable (Row, inout PostgresBinaryCopyEncoder) -> Void) {
        self.name = name
        self.type = type
        self.encode = encode
    }
}

/// What the batch transaction knows about a table that records are upserted into: its columns
/// (in COPY order), its conflict key, its staging table, and the statements built from them.
/// The migrations create the real tables; `TableDescriptionTests` checks that they agree.
public struct TableDescription<Row>: Sendable {
    public let name: String
    /// The primary key: the conflict target of the upsert, and what a batch is de-duplicated by.
    public let key: [String]
    /// The row's own columns; the provenance columns follow them when the table stores provenance.
    public let columns: [TableColumn<Row>]
    /// Whether each row ends with `Provenance.columns` (every table of pseudonymized records).
    let storesProvenance: Bool
    /// Every column a row writes, in COPY order.
    public let storedColumns: [(name: String, type: PostgresColumnType)]
    /// `storedColumns`' names, quoted, for statements.
    public let columnList: [PostgresIdentifier]
    /// Extra assignments of the upsert's DO UPDATE (e.g. `ingested_at = now()`).
    let extraUpdates: [PostgresQuery]
    /// A condition on the existing row (`t`) and the new one (`EXCLUDED`) for the update to happen.
    let updateCondition: PostgresQuery?
    /// false: a row whose key exists already is left as it is (`DO NOTHING`).
    let updatesOnConflict: Bool

    init(name: String, key: [String], columns: [TableColumn<Row>], storesProvenance: Bool = true,
         extraUpdates: [PostgresQuery] = ["ingested_at = now()"], updateCondition: PostgresQuery? = nil, updatesOnConflict: Bool = true) {
        self.name = name
        self.key = key
        self.columns = columns
        self.storesProvenance = storesProvenance
        storedColumns = columns.map { ($0.name, $0.type) } + (storesProvenance ? Provenance.columns.map { ($0.name, $0.type) } : [])
        columnList = storedColumns.map { PostgresIdentifier($0.name) }
        self.extraUpdates = extraUpdates
        self.updateCondition = updateCondition
        self.updatesOnConflict = updatesOnConflict
    }

    /// The session's temp table that a batch's rows are copied into (emptied at every commit).
    public var stagingTable: PostgresIdentifier { PostgresIdentifier("stage_\(name)") }

    public var stagingDDL: PostgresQuery {
        let columns = PostgresQuery.joined(storedColumns.map { "\(PostgresIdentifier($0.name)) \(PostgresQuery(unsafeSQL: $0.type.rawValue))" })
        return "CREATE TEMP TABLE IF NOT EXISTS \(stagingTable) (\(columns)) ON COMMIT DELETE ROWS"
    }

    public var copyStatement: PostgresQuery { "COPY \(stagingTable) (\(columnList)) FROM STDIN (FORMAT binary)" }

    /// COPY into the table itself (no staging, no upsert): only for rows known to be new.
    public func directCopyStatement(schema: PostgresIdentifier) -> PostgresQuery {
        "COPY \(schema.member(name)) (\(columnList)) FROM STDIN (FORMAT binary)"
    }

    /// Appends one row as a binary COPY tuple; `provenance` exactly when the table stores it.
    @inline(__always)
    public func encode(_ row: Row, provenance: Provenance? = nil, into encoder: inout PostgresBinaryCopyEncoder) {
        precondition(storesProvenance == (provenance != nil), "\(name): provenance \(storesProvenance ? "missing" : "not stored")")
        encoder.beginRow(fields: columns.count + (provenance == nil ? 0 : Provenance.columns.count))
        Self.encode(row, columns, into: &encoder)
        if let provenance { TableDescription<Provenance>.encode(provenance, Provenance.columns, into: &encoder) }
    }

    @inline(__always)
    private static func encode(_ row: Row, _ columns: [TableColumn<Row>], into encoder: inout PostgresBinaryCopyEncoder) {
        columns.withUnsafeBufferPointer { columns in
            for i in columns.indices {
                // The array keeps its columns alive during the call: none is retained, nor its closure.
                Unmanaged.passUnretained(columns[i])._withUnsafeGuaranteedRef { $0.encode(row, &encoder) }
            }
        }
    }

    /// `INSERT … SELECT … FROM staging [WHERE filter] ON CONFLICT (key) DO UPDATE …`; the staging
    /// table is aliased `s`, the target `t`.
    public func upsert(schema: PostgresIdentifier, filter: PostgresQuery? = nil, returning: PostgresQuery? = nil) -> PostgresQuery {
        let keys = Set(key)
        let updates = updatesOnConflict
            ? columnList.filter { !keys.contains($0.name) }.map { "\($0) = EXCLUDED.\($0)" } + extraUpdates : []
        let staged = PostgresQuery.joined(columnList.map { "s.\($0)" })
        var sql: PostgresQuery = """
            INSERT INTO \(schema.member(name)) AS t (\(columnList))
            SELECT \(staged) FROM \(stagingTable) s
            """
        if let filter { sql = "\(sql) WHERE \(filter)" }
        sql = "\(sql) ON CONFLICT (\(key.map(PostgresIdentifier.init))) DO "
        sql = updates.isEmpty ? "\(sql)NOTHING" : "\(sql)UPDATE SET \(PostgresQuery.joined(updates))"
        if let updateCondition, !updates.isEmpty { sql = "\(sql) WHERE \(updateCondition)" }
        if let returning { sql = "\(sql) RETURNING \(returning)" }
        return sql
    }
}

/// Where a row came from and the key it was pseudonymized under: what every table of
/// pseudonymized records stores besides the row's own values, in the same last four columns.
/// Encoded apart from the row, so that a row is encoded where it stands, never copied to carry it.
public struct Provenance: Sendable {
    public var source: SourcePosition
    public var keyId: String

    static let columns: [TableColumn<Provenance>] = [
        .init("key_id", .text) { p, e in e.text(p.keyId) },
        .init("source_topic", .text) { p, e in e.text(p.source.topic) },
        .init("source_partition", .int4) { p, e in e.int4(Int(p.source.partition)) },
        .init("source_offset", .int8) { p, e in e.int8(p.source.offset) },
    ]
}
