public import CloudWastePostgres
public import Foundation
public import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `cloudwaste-stream export` and the weekly scheduled export: the last N days of the ML tables as
/// JSON Lines or CSV files, optionally gzip-compressed, plus a `manifest.json`.
///
/// - Constant memory whatever the size: rows are streamed with `COPY … TO STDOUT` and written out
///   in 256 KiB chunks; nothing is collected in memory.
/// - One consistent snapshot: every table is read in one REPEATABLE READ, READ ONLY transaction, so
///   the files and the manifest describe the same instant even while the pipeline writes.
/// - Never a partial file presented as complete: each file is written as `name.partial`, fsynced,
///   then renamed; `manifest.json` is written last (the same way). A folder without a manifest is
///   an unfinished export. On failure the files of this run are removed.
/// - Columns: every column of the table except `emitted_revision` (cost_trend_data), which is
///   bookkeeping of the Kafka emission outbox and means nothing outside the daemon. Provenance
///   (`source_*`, `ingested_at`) and `key_id` are kept: they let a consumer deduplicate and see a
///   key rotation. No column holds a raw identifier (SPEC §3), so an export is as anonymous as the
///   tables themselves.
/// - Time window: rows whose time column is in `[to − days, to)`, `to` being the snapshot time, so
///   consecutive weekly exports neither overlap nor leave gaps. cost_trend_data (a `month` date)
///   contributes every month that overlaps the window; resource_billed_costs (a `usage_date`)
///   the days that start in it.
public struct Exporter: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case jsonl, csv
        var fileExtension: String { rawValue }
    }


    /// SQL for the first UTC day that starts at or after the timestamptz `t`.
    static func firstDayStartingAtOrAfter(_ t: PostgresQuery) -> PostgresQuery {
        "(date_trunc('day', (\(t) AT TIME ZONE 'UTC') + interval '1 day' - interval '1 microsecond'))::date"
    }

    /// The exportable tables, in the order they are exported when none are named; each is
    /// selected by its event-time column for `--days` (`StoredTable.all`).
    public static var defaultTableOrder: [String] { StoredTable.exported.map(\.name) }

    /// Columns that are internal to the daemon and left out of exports (see the type's comment).
    public static let internalColumns: Set<String> = ["emitted_revision"]

    public static let manifestName = "manifest.json"

    let logger: Logger
    /// Polled between rows; a cancelled export fails and removes its files (daemon shutdown).
    let isCancelled: @Sendable () -> Bool

    public init(logger: Logger = Logger(label: "cloudwaste.export"), isCancelled: @escaping @Sendable () -> Bool = { false }) {
        self.logger = logger
        self.isCancelled = isCancelled
    }

    /// Checks what can be checked before touching PostgreSQL (days, table names, the output folder,
    /// which is created if missing) so that bad usage fails fast with exit code 2. Returns the
    /// tables to export, deduplicated, in the order given (all of them when `tables` is empty).
    @discardableResult
    public static func validate(days: Int, tables: [String], outputDirectory: URL) throws(ExportError) -> [String] {
        guard days > 0, days <= 36_500 else {
            throw ExportError(usage: "--days must be a whole number of days between 1 and 36500, not \(days)")
        }
        var selected: [String] = []
        for t in tables where !selected.contains(t) { selected.append(t) }
        if selected.isEmpty { selected = defaultTableOrder }
        let unknown = selected.filter { StoredTable.named($0)?.exported != true }
        if !unknown.isEmpty {
            throw ExportError(usage: "unknown table\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")): choose from \(defaultTableOrder.joined(separator: ", "))")
        }
        try prepareOutputDirectory(outputDirectory)
        return selected
    }

    /// Creates the output folder if missing and proves it writable; refuses a folder that holds a
    /// finished export or dataset already (its manifest).
    static func prepareOutputDirectory(_ outputDirectory: URL) throws(ExportError) {
        let dir = outputDirectory.path
        if let failure = Self.makeDirectories(dir) {
            throw ExportError(usage: "cannot create the output folder \(dir) (\(failure)); choose a writable --out folder")
        }
        // Writability is proven by writing, not guessed from permission bits (root, ACLs, read-only mounts).
        let probe = outputDirectory.appendingPathComponent(".cloudwaste-export-probe-\(getpid())").path
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ExportError(usage: "the output folder \(dir) is not writable (\(String(cString: strerror(errno)))); choose a writable --out folder")
        }
        close(fd)
        unlink(probe)
        if FileManager.default.fileExists(atPath: outputDirectory.appendingPathComponent(manifestName).path) {
            throw ExportError(usage: "\(dir) already holds a finished export (\(manifestName)); choose a new --out folder or remove the old export")
        }
    }

    /// Exports `tables` (all exportable tables when empty) from `schema` into `outputDirectory`.
    /// The connection must not be inside a transaction; it is left outside one.
    public func run(db: PostgresConnection, schema: String, days: Int, format: Format, gzip: Bool,
                    tables: [String], outputDirectory: URL) throws -> ExportManifest {
        let selected = try Self.validate(days: days, tables: tables, outputDirectory: outputDirectory)
        var written: [String] = []  // final paths of this run, removed if the run fails
        do {
            try db.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            // UTC timestamps in the files whatever the server's or role's TimeZone; UTF-8 text.
            try db.query("SET LOCAL TimeZone = 'UTC'; SET LOCAL client_encoding = 'UTF8'")
            let to = try db.transactionStart()
            let from = Timestamp(micros: to.micros - Int64(days) * 86_400_000_000)
            var files: [ExportManifest.File] = []
            for table in selected {
                let file = try exportTable(db: db, schema: schema, table: table, from: from, to: to, format: format,
                                           gzip: gzip, directory: outputDirectory, written: &written)
                files.append(file)
                logger.info("exported \(table): \(file.rows) rows, \(file.bytes) bytes → \(file.file)")
            }
            try db.query("COMMIT")
            let manifest = ExportManifest(createdAt: .now(), schema: schema, days: days, format: format, gzip: gzip,
                                          from: from, to: to, files: files)
            try Self.writeManifest(manifest.jsonBytes, into: outputDirectory)
            return manifest
        } catch {
            if db.isConnected { _ = try? db.query("ROLLBACK") }
            for path in written { unlink(path) }
            throw error
        }
    }

    private func exportTable(db: PostgresConnection, schema: String, table: String, from: Timestamp, to: Timestamp,
                             format: Format, gzip: Bool, directory: URL, written: inout [String]) throws -> ExportManifest.File {
        guard let stored = StoredTable.named(table), stored.exported, let time = stored.eventTime else {
            throw ExportError(usage: "\(table) is not an exportable table")
        }
        let timeColumn = time.name
        let columns = try db.query("""
            SELECT column_name, data_type FROM information_schema.columns
            WHERE table_schema = \(schema) AND table_name = \(table) ORDER BY ordinal_position
            """).decodeRows(as: (String, String).self).map { (name: $0, type: $1) }
        guard !columns.isEmpty else {
            throw ExportError(runtime: "table \(schema).\(table) does not exist: run `cloudwaste-stream migrate` first")
        }
        let exported = columns.filter { !Self.internalColumns.contains($0.name) }
        let hasKeyId = exported.contains { $0.name == "key_id" }
        let relation = PostgresIdentifier(schema).member(table)
        let col = PostgresIdentifier(timeColumn)
        // Literals, not binds: COPY takes no parameters.
        let fromSQL: PostgresQuery = "\(literal: from.postgresText)::timestamptz", toSQL: PostgresQuery = "\(literal: to.postgresText)::timestamptz"
        let condition: PostgresQuery = switch time.kind {
        case .month:  // a month: every month that overlaps the window
            "\(col) >= date_trunc('month', \(fromSQL) AT TIME ZONE 'UTC')::date AND \(col) < (\(toSQL) AT TIME ZONE 'UTC')"
        case .day:  // a UTC day: the days that start in the window (bounds as dates, for the BRIN index)
            "\(col) >= \(Self.firstDayStartingAtOrAfter(fromSQL)) AND \(col) < \(Self.firstDayStartingAtOrAfter(toSQL))"
        case .instant: "\(col) >= \(fromSQL) AND \(col) < \(toSQL)"
        }
        // Pseudonyms as 64 hex digits, as users have always seen them, whichever form the schema
        // stores them in (`PseudonymStorage`).
        let selected = exported.map { column -> PostgresQuery in
            let name = PostgresIdentifier(column.name)
            return column.name.hasSuffix("_hash") ? "\(PseudonymStorage(type: column.type).hex("\(name)")) AS \(name)" : "\(name)"
        }
        let select: PostgresQuery = "SELECT \(PostgresQuery.joined(selected)) FROM \(relation) WHERE \(condition)"

        // Same snapshot as the COPY below, so these agree with the file exactly.
        let summary = try db.query("""
            SELECT count(*), (extract(epoch FROM min(\(col))) * 1000000)::bigint, (extract(epoch FROM max(\(col))) * 1000000)::bigint,
                   \(hasKeyId ? "string_agg(DISTINCT key_id, ',' ORDER BY key_id)" : "NULL::text" as PostgresQuery)
            FROM \(relation) WHERE \(condition)
            """)
        let (expectedRows, minMicros, maxMicros, keyIdList) = try summary.decodeRow(0, as: (Int, Int64?, Int64?, String?).self)
        let keyIds = keyIdList.map { $0.split(separator: ",").map(String.init) } ?? []

        let copy = Self.copyStatement(select, format: format)
        let name = "\(table).\(format.fileExtension)\(gzip ? ".gz" : "")"
        let finalPath = directory.appendingPathComponent(name).path
        let (rows, bytes, sha256) = try writeFile(db: db, copy: copy, format: format, gzip: gzip, finalPath: finalPath,
                                                  what: table, expectedRows: expectedRows)
        written.append(finalPath)
        return ExportManifest.File(
            table: table, file: name, rows: rows, bytes: bytes, sha256: sha256, timeColumn: timeColumn, keyIds: keyIds,
            minTime: minMicros.map { Timestamp(micros: $0) }, maxTime: maxMicros.map { Timestamp(micros: $0) })
    }

    /// Streams one `COPY … TO STDOUT` into `finalPath.partial`, checks that it holds the
    /// `expectedRows` of the snapshot, then publishes it under `finalPath`. Returns rows, bytes and
    /// the SHA-256 of the file as it is on disk. A failure leaves no file behind.
    func writeFile(db: PostgresConnection, copy: PostgresQuery, format: Format, gzip: Bool, finalPath: String,
                   what: String, expectedRows: Int) throws -> (rows: Int, bytes: Int64, sha256: String) {
        let partialPath = finalPath + ".partial"
        let sink = try ExportFileSink(partialPath: partialPath, gzip: gzip)
        var messages = 0
        do {
            try db.copyOut(copy) { row in
                if format == .jsonl, row.first == 0x01 {
                    throw ExportError(runtime: "\(what): a JSON row came back quoted by COPY; the export was stopped rather than write altered JSON")
                }
                messages += 1
                if messages & 0x3FFF == 0, isCancelled() { throw ExportError(runtime: "export cancelled (shutting down)") }
                try sink.write(row)
            }
            try sink.finish()
        } catch {
            sink.abort()
            throw error
        }
        let rows = format == .csv ? max(0, messages - 1) : messages  // CSV: the header is not a row
        do {
            guard rows == expectedRows else {
                throw ExportError(runtime: "\(what): wrote \(rows) rows but the snapshot holds \(expectedRows); export abandoned")
            }
            let (bytes, sha256) = try Self.digest(path: partialPath)
            try Self.publish(partial: partialPath, final: finalPath)
            return (rows, bytes, sha256)
        } catch {
            unlink(partialPath)
            throw error
        }
    }

    /// The COPY that writes `select` in `format`: CSV with a header, or one JSON object per line.
    static func copyStatement(_ select: PostgresQuery, format: Format) -> PostgresQuery {
        switch format {
        case .jsonl:
            // CSV mode with QUOTE and DELIMITER set to control characters that JSON text never
            // contains raw (row_to_json escapes them): the value is then never quoted or escaped, so
            // each COPY row is exactly the JSON plus "\n". Text mode would double every backslash.
            "COPY (SELECT row_to_json(t)::text FROM (\(select)) t) TO STDOUT WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
        case .csv:
            "COPY (\(select)) TO STDOUT WITH (FORMAT csv, HEADER)"
        }
    }

    /// Size and SHA-256 of the bytes on disk (read back in 1 MiB chunks), so the manifest describes
    /// exactly what a consumer will read, gzip or not.
    static func digest(path: String) throws(ExportError) -> (Int64, String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ExportError(runtime: "cannot read back \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let hash = SHA256Stream()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ExportError(runtime: "cannot read back \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            hash.update(n == buffer.count ? buffer : Array(buffer[0..<n]))
            total += Int64(n)
        }
        return (total, hash.finalizeHex())
    }

    /// Writes `manifest.json` the way every file is written (partial, fsync, rename): last, so that
    /// its presence means the folder is complete.
    static func writeManifest(_ json: [UInt8], into directory: URL) throws(ExportError) {
        let path = directory.appendingPathComponent(manifestName).path
        let sink = try ExportFileSink(partialPath: path + ".partial", gzip: false)
        do {
            try sink.write(json + [0x0A])
            try sink.finish()
        } catch {
            sink.abort()
            throw error
        }
        try publish(partial: path + ".partial", final: path)
    }

    /// Renames a finished `.partial` file into place and makes the rename durable.
    static func publish(partial: String, final: String) throws(ExportError) {
        guard rename(partial, final) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw ExportError(runtime: "cannot rename \(partial) to \(final): \(reason)")
        }
        let dir = open((final as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }

    /// `mkdir -p` that reports the system's reason ("Permission denied", "Read-only file system"),
    /// which FileManager's errors on Linux do not carry in their message. Nil on success.
    static func makeDirectories(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            return isDirectory.boolValue ? nil : "\(path) is a file, not a folder"
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, let failure = makeDirectories(parent) { return failure }
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return nil }
        return String(cString: strerror(errno))
    }
}

/// An export that could not be made. `isUsage` failures are the operator's input (exit code 2);
/// the others happened while running (exit code 1).
public struct ExportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var isUsage: Bool

    public init(usage: String) { description = usage; isUsage = true }
    public init(runtime: String) { description = runtime; isUsage = false }
}
