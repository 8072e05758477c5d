public import CloudWastePostgres

/// `cloudwaste-stream stats`: what is in the tables, what was rejected, how far behind we are.
public struct StatsReport: Sendable {
    public struct TableCounts: Sendable { public var table: String; public var total: Int; public var last7Days: Int; public var last30Days: Int }
    public var tables: [TableCounts] = []
    public var deadLettersByReason: [(reason: String, count: Int)] = []
    public var offsets: [(topic: String, partition: Int, nextOffset: Int)] = []
    public var latestFinalizedMonth: String?

    /// Event-time column per table, for the 7/30-day counts.
    public static let timeColumns: [(String, String)] = [
        ("ml_training_data", "detected_at"), ("user_action_patterns", "action_at"),
        ("resource_lifecycle_events", "occurred_at"), ("cloudwatch_metrics_history", "ts"),
        ("user_preferences", "updated_at"), ("cost_trend_data", "month"), ("dead_letters", "received_at"),
    ]

    public static func collect(_ db: PostgresConnection, schema: String, groupId: String) throws -> StatsReport {
        let s = PostgresQuery.quoteIdentifier(schema)
        var report = StatsReport()
        for (table, column) in timeColumns {
            let r = try db.execute("""
                SELECT count(*), count(*) FILTER (WHERE \(column) >= now() - interval '7 days'),
                       count(*) FILTER (WHERE \(column) >= now() - interval '30 days') FROM \(s).\(table)
                """)
            report.tables.append(TableCounts(table: table, total: r.int(0, 0)!, last7Days: r.int(0, 1)!, last30Days: r.int(0, 2)!))
        }
        let dl = try db.execute("SELECT reason, count(*) FROM \(s).dead_letters GROUP BY reason ORDER BY 2 DESC, 1")
        report.deadLettersByReason = (0..<dl.rowCount).map { (dl.string($0, 0)!, dl.int($0, 1)!) }
        let off = try db.query("SELECT topic, partition, next_offset FROM \(unescaped: s).stream_offsets WHERE consumer_group = \(groupId) ORDER BY 1, 2")
        report.offsets = (0..<off.rowCount).map { (off.string($0, 0)!, off.int($0, 1)!, off.int($0, 2)!) }
        report.latestFinalizedMonth = try db.execute("SELECT to_char(max(month), 'YYYY-MM') FROM \(s).cost_trend_data WHERE finalized").string(0, 0)
        return report
    }

    public var text: String {
        var out = "table                         total     7 days    30 days\n"
        for t in tables {
            out += t.table.padding(toLength: 28, withPad: " ", startingAt: 0)
                + String(t.total).leftPad(7) + String(t.last7Days).leftPad(11) + String(t.last30Days).leftPad(11) + "\n"
        }
        out += "\ndead letters by reason:\n"
        out += deadLettersByReason.isEmpty ? "  (none)\n" : deadLettersByReason.map { "  \($0.count.description.leftPad(7))  \($0.reason)" }.joined(separator: "\n") + "\n"
        out += "\nlatest finalized month: \(latestFinalizedMonth ?? "none")\n"
        return out
    }

    public func json(lag: [String: Int] = [:], lagUnknown: String? = nil) -> String {
        let tablesJSON = tables.map { "\"\($0.table)\":{\"total\":\($0.total),\"last_7_days\":\($0.last7Days),\"last_30_days\":\($0.last30Days)}" }.joined(separator: ",")
        let dlJSON = deadLettersByReason.map { "\(jsonString($0.reason)):\($0.count)" }.joined(separator: ",")
        let lagJSON = lag.keys.sorted().map { "\(jsonString($0)):\(lag[$0]!)" }.joined(separator: ",")
        let month = latestFinalizedMonth.map(jsonString) ?? "null"
        return "{\"tables\":{\(tablesJSON)},\"dead_letters\":{\(dlJSON)},\"lag\":{\(lagJSON)},\"lag_unknown\":\(lagUnknown.map(jsonString) ?? "null"),\"latest_finalized_month\":\(month)}"
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

/// A JSON string literal with the required escapes.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

import Foundation
