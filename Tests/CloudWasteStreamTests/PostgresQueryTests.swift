import CloudWastePostgres
import Testing

/// Values become binds, names and fragments become text: what keeps the program's SQL free of
/// injected values by construction.
struct PostgresQueryTests {
    @Test func valuesBecomeNumberedBinds() {
        let user = "o'brien; DROP TABLE x"
        let limit = 10
        let query: PostgresQuery = "SELECT * FROM t WHERE name = \(user) AND n < \(limit) AND m = \(Optional<Int>.none)"
        #expect(query.sql == "SELECT * FROM t WHERE name = $1 AND n < $2 AND m = $3")
        #expect(query.binds == [user, "10", nil])
    }

    /// A string literal interpolated into a query is a value (String is the default literal type),
    /// never a fragment of SQL, with or without interpolations of its own.
    @Test func aStringLiteralInterpolatedIsAValue() {
        let day = "06"
        let query: PostgresQuery = "x = \("a") AND y = \("2026-03-\(day)") AND z = \("\(5)s")"
        #expect(query.sql == "x = $1 AND y = $2 AND z = $3")
        #expect(query.binds == ["a", "2026-03-06", "5s"])
    }

    @Test func identifiersAreQuotedAndQualified() {
        let schema = PostgresIdentifier("we\"ird")
        #expect(schema.sql == "\"we\"\"ird\"")
        #expect(schema.member("ml_training_data").sql == "\"we\"\"ird\".\"ml_training_data\"")
        #expect(schema.member("ml_training_data").name == "ml_training_data")
        let query: PostgresQuery = "SELECT \([PostgresIdentifier("a"), PostgresIdentifier("b")]) FROM \(schema.member("t"))"
        #expect(query.sql == "SELECT \"a\", \"b\" FROM \"we\"\"ird\".\"t\"")
        #expect(query.binds.isEmpty)
    }

    @Test func fragmentsAndLiteralsAreText() {
        let condition: PostgresQuery = "x > \(literal: 5) AND y = \(literal: "it's")"
        let query: PostgresQuery = "SELECT 1 WHERE \(condition) AND z = \(3)"
        #expect(query.sql == "SELECT 1 WHERE x > 5 AND y = 'it''s' AND z = $1")
        #expect(query.binds == ["3"])
        #expect(PostgresQuery.quoteLiteral(#"a\b"#) == #" E'a\\b'"#)
        #expect(PostgresQuery.joined(["a", "b"], separator: "; ").sql == "a; b")
    }

    @Test func arraysAreArrayLiterals() {
        #expect(["a\"b", "c\\d"].postgresText == #"{"a\"b","c\\d"}"#)
        #expect([Int64(1), 2].postgresText == "{1,2}")
        #expect([Int64.min, -7, 0, Int64.max].postgresText == "{-9223372036854775808,-7,0,9223372036854775807}")
        #expect([Int32.min, 5].postgresText == "{-2147483648,5}" && [Int]().postgresText == "{}")
        #expect([true, false].postgresText == "{t,f}")
        #expect(PostgresNullableArray(["x", nil]).postgresText == #"{"x",NULL}"#)
        #expect(PostgresNullableArray(["é\"ü\\", "", nil, "😀"]).postgresText == #"{"é\"ü\\","",NULL,"😀"}"#)
    }
}
