import CLibPQ
#if canImport(Glibc)
import Glibc
#endif
public import Logging
import Synchronization

/// Lets another thread break a connection that is stuck in a blocking call (a frozen server, a
/// dead network path): it shuts the socket down, so the call returns with a connection error.
/// The graceful shutdown uses it once its deadline has passed.
public final class PostgresInterrupter: Sendable {
    private let socket = Mutex<Int32>(-1)

    init() {}

    func attach(_ fd: Int32) { socket.withLock { $0 = fd } }
    func detach() { socket.withLock { $0 = -1 } }

    public func interrupt() {
        socket.withLock { fd in
            if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }
}

/// One blocking libpq connection. Not thread-safe: each pipeline thread owns its own.
/// Every `PGresult` is wrapped in `PostgresResult`, which frees it. `@unchecked Sendable`: it
/// holds libpq's `PGconn` (a C pointer), and is handed to the thread that then owns it.
public final class PostgresConnection: @unchecked Sendable {
    private var conn: OpaquePointer?
    public let connectionString: String
    private let logger: Logger
    public let interrupter = PostgresInterrupter()
    /// Seconds to wait for a connection unless the connection string says otherwise.
    public static let defaultConnectTimeoutSeconds = 10

    public init(connectionString: String, logger: Logger = Logger(label: "cloudwaste.postgres")) throws(PostgresError) {
        self.connectionString = connectionString
        self.logger = logger
        try connect()
    }

    deinit { close() }

    private func connect() throws(PostgresError) {
        close()
        // The connection string is expanded in place of `dbname`, so its own settings override
        // the default connect_timeout listed before it.
        let keywords = ["connect_timeout", "dbname"]
        let values = [String(Self.defaultConnectTimeoutSeconds), connectionString]
        let made = withCStringArray(keywords) { k in
            withCStringArray(values) { v in
                PQconnectdbParams(k + [nil], v + [nil], 1)
            }
        }
        guard let c = made else {
            throw PostgresError(kind: .connection, message: "out of memory creating a connection")
        }
        if PQstatus(c) != CONNECTION_OK {
            let message = Self.firstLine(PQerrorMessage(c))
            PQfinish(c)
            throw PostgresError(kind: .connection, message: message)
        }
        conn = c
        interrupter.attach(PQsocket(c))
        // Our notices (e.g. "relation already exists, skipping") are not worth a log line each.
        _ = try? query("SET client_min_messages = warning")
    }

    /// Checks a connection string's syntax without connecting (libpq's own parser); the error is
    /// libpq's message, redacted.
    public static func checkSyntax(_ connectionString: String) throws(PostgresError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(connectionString, &errorMessage) else {
            defer { if let errorMessage { PQfreemem(errorMessage) } }
            throw PostgresError(kind: .connection, message: firstLine(errorMessage.map { UnsafePointer($0) }))
        }
        PQconninfoFree(options)
    }

    /// Closes the connection; safe to call more than once.
    public func close() {
        interrupter.detach()
        if let conn { PQfinish(conn) }
        conn = nil
    }

    /// Drops a broken connection and opens a new one.
    public func reconnect() throws(PostgresError) { try connect() }

    public var isConnected: Bool {
        guard let conn else { return false }
        return PQstatus(conn) == CONNECTION_OK
    }

    /// The server's process id: lets tests and operators find this session in pg_stat_activity.
    public var backendPID: Int { conn.map { Int(PQbackendPID($0)) } ?? 0 }

    private func handle() throws(PostgresError) -> OpaquePointer {
        guard let conn else { throw PostgresError(kind: .connection, message: "not connected") }
        return conn
    }

    /// Runs a statement, its interpolated values sent as binds (extended protocol). A query
    /// without binds may hold several statements (simple protocol); the last one's result is
    /// returned.
    @discardableResult
    public func query(_ query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        let c = try handle()
        if query.binds.isEmpty { return try check(PQexec(c, query.sql), connection: c) }
        let raw = withCStringArray(query.binds) { values in
            PQexecParams(c, query.sql, Int32(query.binds.count), nil, values, nil, nil, 0)
        }
        return try check(raw, connection: c)
    }

    /// Runs several statements in one round trip (simple query protocol, so no binds) and returns
    /// each one's result. The first failing statement ends the string (PostgreSQL skips the
    /// rest) and throws.
    public func queryAll(_ script: PostgresQuery) throws(PostgresError) -> [PostgresResult] {
        precondition(script.binds.isEmpty, "several statements in one string cannot take binds")
        let c = try handle()
        guard PQsendQuery(c, script.sql) == 1 else {
            throw PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c)))
        }
        var results: [PostgresResult] = []
        var failure: PostgresError?
        collectResults(c, into: &results, failure: &failure)
        if let failure { throw failure }
        return results
    }

    /// Reads results until libpq's NULL: the successful ones into `results`, the first error
    /// into `failure` (statements a pipeline skipped after it are not errors of their own).
    private func collectResults(_ c: OpaquePointer, into results: inout [PostgresResult], failure: inout PostgresError?) {
        while let r = PQgetResult(c) {
            let result = PostgresResult(handle: r)
            let status = PQresultStatus(r)
            if Self.succeeded(status) {
                results.append(result)
            } else if status != PGRES_PIPELINE_ABORTED, failure == nil {
                failure = Self.error(from: r, connection: c)
            }
        }
    }

    private static func succeeded(_ status: ExecStatusType) -> Bool {
        status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY
    }

    /// `COPY … FROM STDIN (FORMAT binary)` of tuples encoded by `PostgresBinaryCopyEncoder`
    /// (header and trailer are added here); returns the rows copied.
    @discardableResult
    public func copyIn(_ statement: PostgresQuery, binaryTuples: UnsafeRawBufferPointer) throws -> Int {
        try copyIn(statement) { writer in
            try writer.write(PostgresBinaryCopyEncoder.header)
            try writer.write(binaryTuples)
            try writer.write(PostgresBinaryCopyEncoder.trailer)
        }
    }

    /// Binary COPY of tuples that `runs` hands over in pieces, in order, each valid during its call
    /// (a batch's rows in place, skipping those it does not write).
    public func copyIn(_ statement: PostgresQuery,
                       binaryTupleRuns runs: (_ each: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> Int {
        try copyIn(statement) { writer in
            try writer.write(PostgresBinaryCopyEncoder.header)
            try runs { try writer.write($0) }
            try writer.write(PostgresBinaryCopyEncoder.trailer)
        }
    }

    public func copyIn(_ statement: PostgresQuery, binaryTuples: ArraySlice<UInt8>) throws -> Int {
        try copyIn(statement) { writer in
            try writer.write(PostgresBinaryCopyEncoder.header)
            try writer.write(binaryTuples)
            try writer.write(PostgresBinaryCopyEncoder.trailer)
        }
    }

    /// Runs statements with binds in one round trip (libpq's pipeline mode) and returns each one's
    /// result. Inside an open transaction they share it; the first failure makes PostgreSQL skip
    /// the rest and is thrown. COPY and multi-statement strings are not allowed here.
    public func pipeline(_ queries: [PostgresQuery]) throws(PostgresError) -> [PostgresResult] {
        let c = try handle()
        guard !queries.isEmpty else { return [] }
        guard PQenterPipelineMode(c) == 1 else {
            throw PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c)))
        }
        var sent = 0
        for query in queries {
            let ok = withCStringArray(query.binds) { values in
                PQsendQueryParams(c, query.sql, Int32(query.binds.count), nil, values, nil, nil, 0)
            }
            if ok != 1 { break }
            sent += 1
        }
        let sendFailure = sent < queries.count ? PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c))) : nil
        guard PQpipelineSync(c) == 1 else {
            let error = PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c)))
            close()  // the protocol state is unknown: a reconnect starts afresh
            throw error
        }
        var results: [PostgresResult] = []
        var failure: PostgresError?
        // Each sent statement's results end with a NULL; the sync point comes last.
        for _ in 0..<sent { collectResults(c, into: &results, failure: &failure) }
        var synced = false
        while !synced, let r = PQgetResult(c) {
            synced = PQresultStatus(r) == PGRES_PIPELINE_SYNC
            PQclear(r)
        }
        guard synced, PQexitPipelineMode(c) == 1 else {
            let error = failure ?? PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c)))
            close()
            throw error
        }
        if let failure = failure ?? sendFailure { throw failure }
        return results
    }

    /// `COPY … FROM STDIN`: `body` is called with a writer that sends chunks; on a thrown error the
    /// copy is aborted with CopyFail and the statement fails.
    @discardableResult
    public func copyIn(_ statement: PostgresQuery, body: (PostgresCopyWriter) throws -> Void) throws -> Int {
        precondition(statement.binds.isEmpty, "COPY takes no binds")
        let c = try handle()
        let start = try check(PQexec(c, statement.sql), connection: c, expect: PGRES_COPY_IN)
        _ = start
        let writer = PostgresCopyWriter(connection: c)
        do {
            try body(writer)
            try writer.flushBuffer()
        } catch {
            _ = PQputCopyEnd(c, "aborted by client")
            drainResults(c)
            throw error
        }
        if PQputCopyEnd(c, nil) != 1 {
            throw PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c)))
        }
        var affected = 0
        var failure: PostgresError?
        while let r = PQgetResult(c) {
            let result = PostgresResult(handle: r)
            if PQresultStatus(r) != PGRES_COMMAND_OK, failure == nil {
                failure = Self.error(from: r, connection: c)
            } else {
                affected = result.affectedRows
            }
        }
        if let failure { throw failure }
        return affected
    }

    /// `COPY … TO STDOUT`: streams each row's bytes to `row` with constant memory.
    public func copyOut(_ statement: PostgresQuery, row: ([UInt8]) throws -> Void) throws {
        precondition(statement.binds.isEmpty, "COPY takes no binds")
        let c = try handle()
        _ = try check(PQexec(c, statement.sql), connection: c, expect: PGRES_COPY_OUT)
        var failure: (any Error)?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let n = PQgetCopyData(c, &buffer, 0)
            if n > 0, let buffer {
                defer { PQfreemem(buffer) }
                if failure == nil {
                    do {
                        try row(Array(UnsafeRawBufferPointer(start: buffer, count: Int(n))))
                    } catch {
                        failure = error
                    }
                }
            } else if n == -1 {
                break
            } else {
                throw PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c)))
            }
        }
        var queryError: PostgresError?
        while let r = PQgetResult(c) {
            if PQresultStatus(r) != PGRES_COMMAND_OK, queryError == nil {
                queryError = Self.error(from: r, connection: c)
            }
            PQclear(r)
        }
        if let failure { throw failure }
        if let queryError { throw queryError }
    }

    /// Runs `body` inside BEGIN … COMMIT; any error rolls back (if the connection still lives).
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try query("BEGIN")
        do {
            let value = try body()
            try query("COMMIT")
            return value
        } catch {
            if isConnected { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    private func drainResults(_ c: OpaquePointer) {
        while let r = PQgetResult(c) { PQclear(r) }
    }

    private func check(
        _ raw: OpaquePointer?, connection c: OpaquePointer, expect: ExecStatusType? = nil
    ) throws(PostgresError) -> PostgresResult {
        guard let raw else {
            throw PostgresError(kind: .connection, message: Self.firstLine(PQerrorMessage(c)))
        }
        let result = PostgresResult(handle: raw)
        let status = PQresultStatus(raw)
        if let expect {
            if status == expect { return result }
        } else if Self.succeeded(status) {
            return result
        }
        throw Self.error(from: raw, connection: c)
    }

    private static func error(from r: OpaquePointer, connection c: OpaquePointer) -> PostgresError {
        let state = PQresultErrorField(r, CLibPQ_DIAG_SQLSTATE()).map { String(cString: $0) }
        let primary = PQresultErrorField(r, CLibPQ_DIAG_MESSAGE_PRIMARY()).map { String(cString: $0) }
        let detail = PQresultErrorField(r, CLibPQ_DIAG_MESSAGE_DETAIL()).map { String(cString: $0) }
        let lost = PQstatus(c) != CONNECTION_OK
        return PostgresError(
            kind: lost || state == nil ? .connection : .query,
            sqlState: state,
            message: primary ?? firstLine(PQerrorMessage(c)),
            detail: detail
        )
    }

    static func firstLine(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        let text = String(cString: message)
        let line = text.split(separator: "\n").first.map(String.init) ?? text
        return line.isEmpty ? "unknown error" : line
    }
}

/// Buffers COPY data and hands it to libpq in 256 KiB chunks.
public final class PostgresCopyWriter {
    private let connection: OpaquePointer
    private var buffer: [UInt8] = []
    private let chunkSize = 256 * 1024
    private let directSize = 32 * 1024

    init(connection: OpaquePointer) {
        self.connection = connection
        buffer.reserveCapacity(chunkSize + 4096)
    }

    public func write(_ bytes: [UInt8]) throws {
        try write(bytes[...])
    }

    public func write(_ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Bytes in place (an encoder's tuples); runs of 32 KiB and more go to libpq directly, without
    /// a copy into the buffer (libpq copies them into its own), smaller ones are gathered.
    public func write(_ raw: UnsafeRawBufferPointer) throws {
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        if bytes.count >= directSize {
            try flushBuffer()
            try send(bytes)
            return
        }
        buffer.append(contentsOf: bytes)
        if buffer.count >= chunkSize { try flushBuffer() }
    }

    public func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= chunkSize { try flushBuffer() }
    }

    /// Direct access for encoders that append in place.
    public func withBuffer(_ body: (inout [UInt8]) -> Void) throws {
        body(&buffer)
        if buffer.count >= chunkSize { try flushBuffer() }
    }

    func flushBuffer() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBufferPointer { try send($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func send(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 8 * chunkSize)
            let rc = UnsafeBufferPointer(rebasing: bytes[offset..<end]).withMemoryRebound(to: CChar.self) {
                PQputCopyData(connection, $0.baseAddress, Int32($0.count))
            }
            if rc != 1 {
                throw PostgresError(kind: .connection, message: PostgresConnection.firstLine(PQerrorMessage(connection)))
            }
            offset = end
        }
    }
}

/// Calls `body` with a C array of C strings (NULL for nil) that lives for the call.
func withCStringArray<R>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var owned: [UnsafeMutablePointer<CChar>?] = values.map { $0.flatMap { strdup($0) } }
    defer { for p in owned { free(p) } }
    return owned.withUnsafeMutableBufferPointer { buf in
        body(buf.map { $0.map { UnsafePointer($0) } })
    }
}
