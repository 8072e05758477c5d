import CloudWastePostgres
import Logging
import Testing
import TestSupport

/// `PostgresConnection.pipeline`: statements with binds in one round trip, their results in
/// order, one transaction when a BEGIN opens it, and a failure that skips the rest, throws
/// PostgreSQL's own error and leaves the connection usable.
@Suite struct PostgresPipelineTests {
    func connection() async throws -> PostgresConnection {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("pipe"), logger: Logger(label: "test"))
        try db.query("CREATE TABLE t (k int PRIMARY KEY, v text)")
        return db
    }

    @Test func resultsComeInOrderInsideOneTransaction() async throws {
        let db = try await connection()
        let name = "a'b\"c"
        let results = try db.pipeline([
            "BEGIN",
            "INSERT INTO t VALUES (1, \(name)) RETURNING k",
            "SELECT v FROM t WHERE k = \(1)",
            "SELECT count(*) FROM t WHERE v = ANY(\([name, "x"])::text[])",
        ])
        #expect(results.count == 4)
        #expect(try results[1].decode(Int.self) == 1)
        #expect(results[2].string(0, 0) == name)
        #expect(try results[3].decode(Int.self) == 1)
        // Still inside the transaction the pipeline opened.
        try db.query("ROLLBACK")
        #expect(try db.query("SELECT count(*) FROM t").decode(Int.self) == 0)
    }

    @Test func aFailureSkipsTheRestAndTheConnectionStaysUsable() async throws {
        let db = try await connection()
        try db.query("INSERT INTO t VALUES (1, 'one')")
        var caught: PostgresError?
        do {
            _ = try db.pipeline([
                "BEGIN",
                "INSERT INTO t VALUES (2, 'two')",
                "INSERT INTO t VALUES (1, 'again')",  // unique violation
                "INSERT INTO t VALUES (3, 'three')",
            ])
        } catch {
            caught = error
        }
        #expect(caught?.sqlState == "23505")
        #expect(db.isConnected)
        try db.query("ROLLBACK")
        #expect(try db.query("SELECT string_agg(v, ',' ORDER BY k) FROM t").string(0, 0) == "one")
        // The next pipeline and plain statements work as before.
        let again = try db.pipeline(["SELECT \(41) + 1"])
        #expect(try again.first?.decode(Int.self) == 42)
        #expect(try db.pipeline([]).isEmpty)
    }
}
