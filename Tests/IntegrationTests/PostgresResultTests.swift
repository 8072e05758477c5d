import CloudWastePostgres
import Foundation
import Testing
import TestSupport

/// Results decoded by type, and the one SQL path, against a real server.
struct PostgresResultTests {
    @Test func cellsDecodeByTypeAndRefuseWhatIsNotThatType() async throws {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("decode"))
        let result = try db.query("SELECT 42::int, NULL::text, 'x'::text, true, 2.5::float8, 9000000000::bigint")
        let (n, missing, text, flag, real, big) = try result.decodeRow(0, as: (Int, String?, String, Bool, Double, Int64).self)
        #expect(n == 42 && missing == nil && text == "x" && flag && real == 2.5 && big == 9_000_000_000)

        func failure(_ body: () throws -> Void) -> PostgresError? {
            do { try body(); return nil } catch let error as PostgresError { return error } catch { return nil }
        }
        let null = try #require(failure { _ = try result.decode(String.self, column: 1) })
        #expect(null.kind == .unexpectedResult && null.description.contains("is NULL") && !null.isTransient)
        let notInt = try #require(failure { _ = try result.decode(Int.self, column: 2) })
        #expect(notInt.description.contains("not text of Int"))
        #expect(failure { _ = try result.decode(Int.self, row: 1) }?.kind == .unexpectedResult)
        #expect(try db.query("SELECT generate_series(1, 3)").decodeColumn(as: Int.self) == [1, 2, 3])
    }

    @Test func valuesTravelAsBindsAndStatementsWithoutValuesMayBeSeveral() async throws {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("binds"))
        let hostile = "x'); DROP TABLE t; --"
        try db.query("CREATE TABLE t (v text); CREATE TABLE u (v text)")  // no binds: simple protocol
        try db.query("INSERT INTO t VALUES (\(hostile))")
        #expect(try db.query("SELECT v FROM t").decodeColumn(as: String.self) == [hostile])
        // With binds a string holds one statement only (extended protocol).
        #expect(throws: PostgresError.self) { try db.query("SELECT \(1); SELECT 2") }
        let schema = PostgresIdentifier("Odd \"schema\"")
        try db.query("CREATE SCHEMA \(schema); CREATE TABLE \(schema.member("t")) (v int)")
        try db.query("INSERT INTO \(schema.member("t")) VALUES (\(7))")
        #expect(try db.query("SELECT v FROM \(schema.member("t"))").decode(Int.self) == 7)
    }

    /// Array binds are written element by element into one literal (integers as digits, text
    /// quoted): PostgreSQL reads back exactly what was bound.
    @Test func arrayBindsArriveAsBound() async throws {
        let db = try PostgresConnection(connectionString: try await TestPostgres.newDatabase("arrays"))
        let numbers: [Int64] = [Int64.min, -1, 0, 42, 1_000_000_000_000, Int64.max]
        #expect(try db.query("SELECT unnest(\(numbers)::bigint[])").decodeColumn(as: Int64.self) == numbers)
        let small: [Int32] = [Int32.min, 7, Int32.max]
        #expect(try db.query("SELECT unnest(\(small)::int[])").decodeColumn(as: Int32.self) == small)
        #expect(try db.query("SELECT unnest(\([true, false])::boolean[])").decodeColumn(as: Bool.self) == [true, false])
        let texts = ["a\"b", "c\\d", "", "NULL", "é,{}", "😀"]
        #expect(try db.query("SELECT unnest(\(texts)::text[])").decodeColumn(as: String.self) == texts)
        let nullable = PostgresNullableArray(["x", nil])
        #expect(try db.query("SELECT unnest(\(nullable)::text[])").decodeColumn(as: String?.self) == ["x", nil])
    }
}
