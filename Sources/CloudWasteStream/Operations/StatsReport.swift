public import CloudWastePostgres
public import Foundation

/// `cloudwaste-stream stats`, `/stats` and the status page: what is in the tables, what was
/// rejected, where each partition stands, and the monthly totals of the cost trends. Counts for
/// the last 7 and 30 days are by ingestion time (what was collected lately, as the old admin panel
/// showed it), and by event time beside them (what happened lately).
public struct StatsReport: Sendable, Codable, Equatable {
    public struct TableCounts: Sendable, Codable, Equatable {
        public var table: String
        public var total: Int
        /// Rows stored in the last 7 / 30 days.
        public var last7Days: Int
        public var last30Days: Int
        /// Rows whose event time (`eventTimeColumn`) falls in the last 7 / 30 days.
        public var eventTimeLast7Days: Int?
        public var eventTimeLast30Days: Int?
        public var eventTimeColumn: String?
    }

    public struct ReasonCount: Sendable, Codable, Equatable {
        public var reason: String
        public var count: Int
    }

    public struct PartitionOffset: Sendable, Codable, Equatable {
        public var topic: String
        public var partition: Int
        public var nextOffset: Int
    }

    /// Waste detected, eliminated and billed over all accounts in one month and one currency
    /// (amounts in different currencies are never added up).
    public struct MonthTotals: Sendable, Codable, Equatable {
        public var month: String
        public var currency: String
        public var wasteDetected: Double
        public var wasteEliminated: Double
        /// What billing reported for the month's detected resources (unblended).
        public var billedWaste: Double
        public var accounts: Int
    }

    public var tables: [TableCounts] = []
    public var deadLettersByReason: [ReasonCount] = []
    /// Dead letters per source topic (`reason` holds the topic).
    public var deadLettersByTopic: [ReasonCount] = []
    public var offsets: [PartitionOffset] = []
    public var latestFinalizedMonth: String?
    public var costTrends: [MonthTotals] = []
    public var takenAt = Date()

    public static func collect(_ db: PostgresConnection, schema: String, groupId: String) throws -> StatsReport {
        let s = PostgresIdentifier(schema)
        var report = StatsReport()
        for stored in StoredTable.counted {
            // When a row was stored, and when it happened (if that is another column).
            guard let ingested = stored.storedAt else { continue }
            let table = stored.name
            let event = stored.eventTime.map(\.name).flatMap { $0 == ingested ? nil : $0 }
            // Without an event-time column the last two counts are NULL.
            let eventCounts: PostgresQuery = event.map { column in
                let at = PostgresIdentifier(column)
                return "count(*) FILTER (WHERE \(at) >= now() - interval '7 days'), count(*) FILTER (WHERE \(at) >= now() - interval '30 days')"
            } ?? "NULL::bigint, NULL::bigint"
            let ingestedAt = PostgresIdentifier(ingested)
            let r = try db.query("""
                SELECT count(*), count(*) FILTER (WHERE \(ingestedAt) >= now() - interval '7 days'),
                       count(*) FILTER (WHERE \(ingestedAt) >= now() - interval '30 days'), \(eventCounts)
                  FROM \(s.member(table))
                """)
            let (total, last7, last30, event7, event30) = try r.decodeRow(0, as: (Int, Int, Int, Int?, Int?).self)
            report.tables.append(TableCounts(table: table, total: total, last7Days: last7, last30Days: last30,
                                             eventTimeLast7Days: event7, eventTimeLast30Days: event30, eventTimeColumn: event))
        }
        let dl = try db.query("SELECT reason, count(*) FROM \(s).dead_letters GROUP BY reason ORDER BY 2 DESC, 1")
        report.deadLettersByReason = try dl.decodeRows(as: (String, Int).self).map { ReasonCount(reason: $0, count: $1) }
        let dt = try db.query("SELECT source_topic, count(*) FROM \(s).dead_letters GROUP BY 1 ORDER BY 1")
        report.deadLettersByTopic = try dt.decodeRows(as: (String, Int).self).map { ReasonCount(reason: $0, count: $1) }
        let off = try db.query("SELECT topic, partition, next_offset FROM \(s).stream_offsets WHERE consumer_group = \(groupId) ORDER BY 1, 2")
        report.offsets = try off.decodeRows(as: (String, Int, Int).self).map { PartitionOffset(topic: $0, partition: $1, nextOffset: $2) }
        report.latestFinalizedMonth = try db.query("SELECT to_char(max(month), 'YYYY-MM') FROM \(s).cost_trend_data WHERE finalized")
            .decode(String?.self)
        let trends = try db.query("""
            SELECT to_char(month, 'YYYY-MM'), currency, sum(waste_detected_monthly_cost)::float8,
                   sum(waste_eliminated_monthly_cost)::float8, sum(billed_waste_monthly_cost)::float8, count(*)::int
              FROM \(s).cost_trend_data GROUP BY 1, 2 ORDER BY 1 DESC, 2 LIMIT 48
            """)
        report.costTrends = try trends.decodeRows(as: (String, String, Double?, Double?, Double?, Int).self).reversed().map {
            MonthTotals(month: $0, currency: $1, wasteDetected: $2 ?? 0, wasteEliminated: $3 ?? 0, billedWaste: $4 ?? 0, accounts: $5)
        }
        return report
    }

    public var text: String {
        var out = "table                         total  stored 7 d  stored 30 d  event 7 d  event 30 d\n"
        for t in tables {
            out += t.table.padding(toLength: 28, withPad: " ", startingAt: 0)
                + String(t.total).leftPad(7) + String(t.last7Days).leftPad(12) + String(t.last30Days).leftPad(13)
                + (t.eventTimeLast7Days.map { String($0) } ?? "-").leftPad(11) + (t.eventTimeLast30Days.map { String($0) } ?? "-").leftPad(12) + "\n"
        }
        out += "(stored: by ingestion time; event: by the record's own time)\n"
        out += "\ndead letters by reason:\n"
        out += deadLettersByReason.isEmpty ? "  (none)\n" : deadLettersByReason.map { "  \($0.count.description.leftPad(7))  \($0.reason)" }.joined(separator: "\n") + "\n"
        out += "\nlatest finalized month: \(latestFinalizedMonth ?? "none")\n"
        return out
    }

    /// The JSON of `stats --json`: the report plus lag per partition.
    public func json(lag: [String: Int] = [:], lagUnknown: String? = nil) -> String {
        struct Document: Encodable {
            var tables: [String: TableCounts]
            var deadLetters: [String: Int]
            var lag: [String: Int]
            var lagUnknown: String?
            var latestFinalizedMonth: String?
            var costTrends: [MonthTotals]
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(tables, forKey: .tables)
                try c.encode(deadLetters, forKey: .deadLetters)
                try c.encode(lag, forKey: .lag)
                try c.encode(lagUnknown, forKey: .lagUnknown)  // null, not absent
                try c.encode(latestFinalizedMonth, forKey: .latestFinalizedMonth)
                try c.encode(costTrends, forKey: .costTrends)
            }
            enum CodingKeys: String, CodingKey { case tables, deadLetters, lag, lagUnknown, latestFinalizedMonth, costTrends }
        }
        let doc = Document(tables: Dictionary(uniqueKeysWithValues: tables.map { ($0.table, $0) }),
                           deadLetters: Dictionary(deadLettersByReason.map { ($0.reason, $0.count) }, uniquingKeysWith: +),
                           lag: lag, lagUnknown: lagUnknown, latestFinalizedMonth: latestFinalizedMonth, costTrends: costTrends)
        return String(decoding: JSONCoding.bytes(doc), as: UTF8.self)
    }
}

/// The project's JSON encoding off the hot path: snake_case keys, sorted, no escaped slashes.
public enum JSONCoding {
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }

    /// `value` as JSON (`{}` if it cannot be encoded, which does not happen for the project's types).
    public static func bytes(_ value: some Encodable) -> [UInt8] {
        Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
