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
///   contributes every month that overlaps the window.
public struct Exporter: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case jsonl, csv
        var fileExtension: String { rawValue }
    }

    /// Exportable table → its event-time column, used for `--days`.
    public static let exportableTables: [String: String] = [
        "ml_training_data": "detected_at",
        "user_action_patterns": "action_at",
        "resource_lifecycle_events": "occurred_at",
        "cloudwatch_metrics_history": "ts",
        "cost_trend_data": "month",
        "user_preferences": "updated_at",
    ]

    /// The tables in the order they are exported when none are named.
    public static let defaultTableOrder = [
        "ml_training_data", "user_action_patterns", "resource_lifecycle_events",
        "cloudwatch_metrics_history", "cost_trend_data", "user_preferences",
    ]

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
        let unknown = selected.filter { exportableTables[$0] == nil }
        if !unknown.isEmpty {
            throw ExportError(usage: "unknown table\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")): choose from \(defaultTableOrder.joined(separator: ", "))")
        }
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
        return selected
    }

    /// Exports `tables` (all exportable tables when empty) from `schema` into `outputDirectory`.
    /// The connection must not be inside a transaction; it is left outside one.
    public func run(db: PostgresConnection, schema: String, days: Int, format: Format, gzip: Bool,
                    tables: [String], outputDirectory: URL) throws -> ExportManifest {
        let selected = try Self.validate(days: days, tables: tables, outputDirectory: outputDirectory)
        let gzipPath = gzip ? try Self.findGzip() : nil
        var written: [String] = []  // final paths of this run, removed if the run fails
        do {
            try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            // UTC timestamps in the files whatever the server's or role's TimeZone; UTF-8 text.
            try db.execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL client_encoding = 'UTF8'")
            let to = Timestamp(micros: Int64(try db.execute("SELECT (extract(epoch FROM now()) * 1000000)::bigint").string(0, 0)!)!)
            let from = Timestamp(micros: to.micros - Int64(days) * 86_400_000_000)
            var files: [ExportManifest.File] = []
            for table in selected {
                let file = try exportTable(db: db, schema: schema, table: table, from: from, to: to, format: format,
                                           gzipPath: gzipPath, directory: outputDirectory, written: &written)
                files.append(file)
                logger.info("exported \(table): \(file.rows) rows, \(file.bytes) bytes → \(file.file)")
            }
            try db.execute("COMMIT")
            let manifest = ExportManifest(createdAt: .now(), schema: schema, days: days, format: format, gzip: gzip,
                                          from: from, to: to, files: files)
            let manifestURL = outputDirectory.appendingPathComponent(Self.manifestName)
            let sink = try ExportFileSink(partialPath: manifestURL.path + ".partial", gzipPath: nil)
            do {
                try sink.write(Array((manifest.json + "\n").utf8))
                try sink.finish()
            } catch {
                sink.abort()
                throw error
            }
            try Self.publish(partial: manifestURL.path + ".partial", final: manifestURL.path)
            return manifest
        } catch {
            if db.isConnected { _ = try? db.execute("ROLLBACK") }
            for path in written { unlink(path) }
            throw error
        }
    }

    private func exportTable(db: PostgresConnection, schema: String, table: String, from: Timestamp, to: Timestamp,
                             format: Format, gzipPath: String?, directory: URL, written: inout [String]) throws -> ExportManifest.File {
        let timeColumn = Self.exportableTables[table]!
        let columns = try db.query("""
            SELECT column_name, data_type FROM information_schema.columns
            WHERE table_schema = \(schema) AND table_name = \(table) ORDER BY ordinal_position
            """).rows.map { (name: $0[0]!, type: $0[1]!) }
        guard !columns.isEmpty else {
            throw ExportError(runtime: "table \(schema).\(table) does not exist: run `cloudwaste-stream migrate` first")
        }
        let exported = columns.filter { !Self.internalColumns.contains($0.name) }
        let hasKeyId = exported.contains { $0.name == "key_id" }
        let isDate = columns.first { $0.name == timeColumn }?.type == "date"
        let q = PostgresQuery.quoteIdentifier
        let relation = "\(q(schema)).\(q(table))"
        let col = q(timeColumn)
        // Literals, not binds: COPY takes no parameters. Both values come from the program.
        let fromSQL = "'\(from.postgresText)'::timestamptz", toSQL = "'\(to.postgresText)'::timestamptz"
        let condition = isDate
            ? "\(col) >= date_trunc('month', \(fromSQL) AT TIME ZONE 'UTC')::date AND \(col) < (\(toSQL) AT TIME ZONE 'UTC')"
            : "\(col) >= \(fromSQL) AND \(col) < \(toSQL)"
        let select = "SELECT \(exported.map { q($0.name) }.joined(separator: ", ")) FROM \(relation) WHERE \(condition)"

        // Same snapshot as the COPY below, so these agree with the file exactly.
        let summary = try db.execute("""
            SELECT count(*), (extract(epoch FROM min(\(col))) * 1000000)::bigint, (extract(epoch FROM max(\(col))) * 1000000)::bigint,
                   \(hasKeyId ? "string_agg(DISTINCT key_id, ',' ORDER BY key_id)" : "NULL")
            FROM \(relation) WHERE \(condition)
            """)
        let expectedRows = summary.int(0, 0) ?? 0
        let keyIds = summary.string(0, 3).map { $0.split(separator: ",").map(String.init) } ?? []

        let copy: String
        switch format {
        case .jsonl:
            // CSV mode with QUOTE and DELIMITER set to control characters that JSON text never
            // contains raw (row_to_json escapes them): the value is then never quoted or escaped, so
            // each COPY row is exactly the JSON plus "\n". Text mode would double every backslash.
            copy = "COPY (SELECT row_to_json(t)::text FROM (\(select)) t) TO STDOUT WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
        case .csv:
            copy = "COPY (\(select)) TO STDOUT WITH (FORMAT csv, HEADER)"
        }
        let name = "\(table).\(format.fileExtension)\(gzipPath != nil ? ".gz" : "")"
        let finalPath = directory.appendingPathComponent(name).path
        let partialPath = finalPath + ".partial"
        let sink = try ExportFileSink(partialPath: partialPath, gzipPath: gzipPath)
        var messages = 0
        do {
            try db.copyOut(copy) { row in
                if format == .jsonl, row.first == 0x01 {
                    throw ExportError(runtime: "\(table): a JSON row came back quoted by COPY; the export was stopped rather than write altered JSON")
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
        let bytes: Int64, sha256: String
        do {
            guard rows == expectedRows else {
                throw ExportError(runtime: "\(table): wrote \(rows) rows but the snapshot holds \(expectedRows); export abandoned")
            }
            (bytes, sha256) = try Self.digest(path: partialPath)
            try Self.publish(partial: partialPath, final: finalPath)
        } catch {
            unlink(partialPath)
            throw error
        }
        written.append(finalPath)
        return ExportManifest.File(
            table: table, file: name, rows: rows, bytes: bytes, sha256: sha256, timeColumn: timeColumn, keyIds: keyIds,
            minTime: summary.string(0, 1).flatMap(Int64.init).map { Timestamp(micros: $0) },
            maxTime: summary.string(0, 2).flatMap(Int64.init).map { Timestamp(micros: $0) })
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

    static func findGzip() throws(ExportError) -> String {
        for path in ["/usr/bin/gzip", "/bin/gzip", "/usr/local/bin/gzip"] where access(path, X_OK) == 0 { return path }
        throw ExportError(runtime: "gzip was not found in /usr/bin, /bin or /usr/local/bin: install gzip or export without --gzip")
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

/// What an export wrote; `json` is the content of `manifest.json`.
public struct ExportManifest: Sendable, Equatable {
    public struct File: Sendable, Equatable {
        public var table: String
        public var file: String
        public var rows: Int
        public var bytes: Int64
        public var sha256: String
        public var timeColumn: String
        public var keyIds: [String]
        /// Earliest and latest value of the time column among the exported rows (nil: no rows).
        public var minTime: Timestamp?
        public var maxTime: Timestamp?
    }

    public var createdAt: Timestamp
    public var schema: String
    public var days: Int
    public var format: Exporter.Format
    public var gzip: Bool
    /// The window `[from, to)`; `to` is the instant of the snapshot.
    public var from: Timestamp
    public var to: Timestamp
    public var files: [File]

    /// Distinct key ids over every file: more than one means the data straddles a key rotation.
    public var keyIds: [String] { Array(Set(files.flatMap(\.keyIds))).sorted() }
    public var totalRows: Int { files.reduce(0) { $0 + $1.rows } }

    public var json: String {
        func strings(_ a: [String]) -> String { "[" + a.map(jsonString).joined(separator: ",") + "]" }
        func time(_ t: Timestamp?) -> String { t.map { jsonString($0.description) } ?? "null" }
        let filesJSON = files.map { f in
            "{\"table\":\(jsonString(f.table)),\"file\":\(jsonString(f.file)),\"rows\":\(f.rows),\"bytes\":\(f.bytes),"
                + "\"sha256\":\(jsonString(f.sha256)),\"time_column\":\(jsonString(f.timeColumn)),\"key_ids\":\(strings(f.keyIds)),"
                + "\"min_time\":\(time(f.minTime)),\"max_time\":\(time(f.maxTime))}"
        }
        return "{\"manifest_version\":1,\"created_at\":\(jsonString(createdAt.description)),\"schema\":\(jsonString(schema)),"
            + "\"days\":\(days),\"format\":\(jsonString(format.rawValue)),\"gzip\":\(gzip),"
            + "\"time_range\":{\"from\":\(jsonString(from.description)),\"to\":\(jsonString(to.description))},"
            + "\"key_ids\":\(strings(keyIds)),\"total_rows\":\(totalRows),\"files\":[\(filesJSON.joined(separator: ","))]}"
    }
}

/// Where one file's bytes go: straight into `name.partial`, or through `gzip -c -n` whose stdout is
/// that file. gzip is a child process (posix_spawn, not Foundation's Process, whose waitUntilExit
/// can hang under Swift concurrency) fed through a socketpair written with MSG_NOSIGNAL, so a gzip
/// that dies is an error here, never a SIGPIPE that kills the daemon.
final class ExportFileSink {
    let partialPath: String
    private var fileFD: Int32
    private var inputFD: Int32
    private var gzipPID: pid_t = 0
    private var buffer: [UInt8] = []
    private var finished = false
    private static let chunkSize = 256 * 1024

    init(partialPath: String, gzipPath: String?) throws(ExportError) {
        self.partialPath = partialPath
        fileFD = open(partialPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fileFD >= 0 else { throw ExportError(runtime: "cannot create \(partialPath): \(String(cString: strerror(errno)))") }
        inputFD = fileFD
        buffer.reserveCapacity(Self.chunkSize + 64 * 1024)
        guard let gzipPath else { return }
        var fds: [Int32] = [-1, -1]
        // CLOEXEC on both ends: no other child spawned meanwhile may hold gzip's input open.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fileFD); unlink(partialPath)
            throw ExportError(runtime: "cannot create a socketpair for gzip: \(reason)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 0)
        posix_spawn_file_actions_adddup2(&actions, fileFD, 1)
        let args: [String] = [gzipPath, "-c", "-n"]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, gzipPath, &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0]); close(fileFD); unlink(partialPath)
            throw ExportError(runtime: "cannot start \(gzipPath): \(String(cString: strerror(rc)))")
        }
        gzipPID = pid
        inputFD = fds[0]
    }

    deinit { abort() }

    func write(_ bytes: [UInt8]) throws(ExportError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.chunkSize { try flush() }
    }

    private func flush() throws(ExportError) {
        guard !buffer.isEmpty else { return }
        let isSocket = gzipPID != 0
        let failure: Int32? = buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = isSocket
                    ? send(inputFD, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    : Glibc.write(inputFD, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return n < 0 ? errno : EIO }
            }
            return nil
        }
        if let failure {
            let what = isSocket ? "gzip stopped reading (see its message above)" : String(cString: strerror(failure))
            throw ExportError(runtime: "cannot write \(partialPath): \(what)")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, ends gzip's input and waits for it, then fsyncs and closes the file.
    func finish() throws(ExportError) {
        try flush()
        if gzipPID != 0 {
            close(inputFD)
            inputFD = -1
            let status = Self.wait(gzipPID)
            gzipPID = 0
            guard status == 0 else { throw ExportError(runtime: "gzip failed (exit status \(status)) writing \(partialPath)") }
        }
        guard fsync(fileFD) == 0 else { throw ExportError(runtime: "cannot write \(partialPath): \(String(cString: strerror(errno)))") }
        let closed = close(fileFD)
        fileFD = -1
        inputFD = -1
        guard closed == 0 else { throw ExportError(runtime: "cannot write \(partialPath): \(String(cString: strerror(errno)))") }
        finished = true
    }

    /// Stops gzip, closes and deletes the partial file. Safe to call more than once.
    func abort() {
        if gzipPID != 0 {
            kill(gzipPID, SIGTERM)
            if inputFD >= 0 { close(inputFD) }
            _ = Self.wait(gzipPID)
            gzipPID = 0
            inputFD = -1
        }
        if fileFD >= 0 {
            close(fileFD)
            fileFD = -1
        }
        if !finished {
            finished = true
            unlink(partialPath)
        }
    }

    private static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
