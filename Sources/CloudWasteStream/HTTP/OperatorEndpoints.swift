import CloudWastePostgres
import Foundation
import Synchronization

/// `/healthz`, `/readyz`, `/metrics`, `/stats` and the status page `/`, over the pipeline's
/// status, its metrics, and PostgreSQL (read through a connection of its own).
public final class OperatorEndpoints: Sendable {
    private let pipeline: StreamPipeline
    private let config: StreamConfig
    private let db = Mutex<PostgresConnection?>(nil)

    public init(pipeline: StreamPipeline, config: StreamConfig) {
        self.pipeline = pipeline
        self.config = config
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case "/healthz": return pipeline.isStopping ? .text("stopping\n", status: 503) : .text("ok\n")
        case "/readyz":
            let s = pipeline.status
            let body = "kafka_joined=\(s.kafkaJoined) postgres_healthy=\(s.postgresHealthy) assigned_partitions=\(s.assignedPartitions)\n"
                + (s.notReadyReason.map { "not ready: \($0)\n" } ?? "")
            return .text(body, status: s.ready ? 200 : 503)
        case "/metrics":
            return .text(pipeline.metrics.registry.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/stats": return .json(statsJSON())
        case "/": return .html(statusPage())
        default:
            if request.path.hasPrefix("/exports/") { return exportFile(String(request.path.dropFirst("/exports/".count))) }
            return .text("not found\n", status: 404)
        }
    }

    /// Serves `<export folder>/<file>` from the export directory; names are checked so that no
    /// path outside it can be reached.
    private func exportFile(_ relative: String) -> HTTPResponse {
        let parts = relative.split(separator: "/").map(String.init)
        let safe = parts.count == 2 && parts.allSatisfy { p in !p.hasPrefix(".") && p.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 46 || c == 95 } }
        guard safe, let data = FileManager.default.contents(atPath: "\(config.exportDirectory)/\(parts[0])/\(parts[1])") else {
            return .text("not found\n", status: 404)
        }
        let type = parts[1].hasSuffix(".json") ? "application/json" : parts[1].hasSuffix(".csv") ? "text/csv" : "application/octet-stream"
        return HTTPResponse(status: 200, contentType: type, body: [UInt8](data), headers: [])
    }

    /// The newest export folders that have a manifest (i.e. finished), newest first.
    private func latestExports(limit: Int = 3) -> [(folder: String, files: [String])] {
        let fm = FileManager.default
        let folders = ((try? fm.contentsOfDirectory(atPath: config.exportDirectory)) ?? []).sorted(by: >)
        var out: [(String, [String])] = []
        for folder in folders where fm.fileExists(atPath: "\(config.exportDirectory)/\(folder)/manifest.json") {
            let files = ((try? fm.contentsOfDirectory(atPath: "\(config.exportDirectory)/\(folder)")) ?? []).filter { !$0.hasSuffix(".partial") }.sorted()
            out.append((folder, files))
            if out.count == limit { break }
        }
        return out
    }

    /// Waste detected and eliminated per month over all accounts (last 12 months), as an SVG bar chart.
    private func trendChart() -> String {
        let rows: [[String?]] = db.withLock { conn in
            guard let conn else { return [] }
            return (try? conn.execute("""
                SELECT to_char(month, 'YYYY-MM'), sum(waste_detected_monthly_cost)::float8, sum(waste_eliminated_monthly_cost)::float8
                  FROM \(PostgresQuery.quoteIdentifier(config.postgresSchema)).cost_trend_data
                 GROUP BY month ORDER BY month DESC LIMIT 12
                """).rows.reversed()) ?? []
        }
        guard !rows.isEmpty else { return "<p>No cost trends yet.</p>" }
        let values = rows.map { (String($0[0] ?? ""), Double($0[1] ?? "0") ?? 0, Double($0[2] ?? "0") ?? 0) }
        let top = max(1, values.map(\.1).max() ?? 1)
        let width = 60 * values.count + 40
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"230\" role=\"img\" aria-label=\"monthly waste\">"
        for (i, v) in values.enumerated() {
            let x = 30 + i * 60
            let h1 = Int(170 * v.1 / top), h2 = Int(170 * v.2 / top)
            svg += "<rect x=\"\(x)\" y=\"\(190 - h1)\" width=\"22\" height=\"\(h1)\" fill=\"#c0392b\"><title>\(v.0) detected \(Int(v.1))</title></rect>"
            svg += "<rect x=\"\(x + 24)\" y=\"\(190 - h2)\" width=\"22\" height=\"\(h2)\" fill=\"#27ae60\"><title>\(v.0) eliminated \(Int(v.2))</title></rect>"
            svg += "<text x=\"\(x)\" y=\"210\" font-size=\"11\">\(v.0)</text>"
        }
        return svg + "</svg><p><span style=\"color:#c0392b\">■</span> waste detected per month · <span style=\"color:#27ae60\">■</span> waste eliminated per month (USD, all accounts)</p>"
    }

    private func report() -> StatsReport? {
        db.withLock { conn -> StatsReport? in
            do {
                if conn == nil || conn?.isConnected == false { conn = try PostgresConnection(connectionString: config.postgresURL) }
                return try StatsReport.collect(conn!, schema: config.postgresSchema, groupId: config.groupId)
            } catch {
                conn = nil
                return nil
            }
        }
    }

    func statsJSON() -> String {
        let s = pipeline.status
        var lag: [String: Int] = [:]
        for (tp, l) in s.lag { lag[tp.description] = Int(l) }
        let tables = report()?.json(lag: lag) ?? "null"
        return "{\"ready\":\(s.ready),\"records_consumed\":\(s.recordsConsumed),\"records_committed\":\(s.recordsCommitted),\"batches_committed\":\(s.batchesCommitted),\"dead_letters\":\(s.deadLetters),\"uptime_seconds\":\(Int(Date().timeIntervalSince(s.startedAt))),\"database\":\(tables)}"
    }

    func statusPage() -> String {
        let s = pipeline.status
        let r = report()
        let uptime = max(1, Date().timeIntervalSince(s.startedAt))
        let rows = r?.tables.map { "<tr><td>\($0.table)</td><td>\($0.total)</td><td>\($0.last7Days)</td><td>\($0.last30Days)</td></tr>" }.joined() ?? ""
        let dead = r?.deadLettersByReason.map { "<tr><td>\(htmlEscape($0.reason))</td><td>\($0.count)</td></tr>" }.joined() ?? ""
        let totalLag = s.lag.values.reduce(0, +)
        let lag = "<tr><td>all \(s.lag.count) partitions</td><td>\(totalLag)</td></tr>" + s.lag.filter { $0.value > 0 }
            .sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(10)
            .map { "<tr><td>\(htmlEscape($0.key.description))</td><td>\($0.value)</td></tr>" }.joined()
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>CloudWaste Stream</title>
            <meta http-equiv="refresh" content="10">
            <style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}
            td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}
            .ok{color:#080}.bad{color:#b00}</style></head><body>
            <h1>CloudWaste Stream</h1>
            <p class="\(s.ready ? "ok" : "bad")">\(s.ready ? "ready" : "not ready") · \(s.assignedPartitions) partitions ·
            \(s.recordsCommitted) records committed · \(Int(Double(s.recordsCommitted) / uptime)) records/s average</p>
            <h2>Tables</h2><table><tr><th>table</th><th>total</th><th>7 days</th><th>30 days</th></tr>\(rows)</table>
            <h2>Dead letters</h2><table><tr><th>reason</th><th>count</th></tr>\(dead)</table>
            <h2>Cost trends</h2>\(trendChart())
            <h2>Lag</h2><table><tr><th>partition</th><th>lag</th></tr>\(lag)</table>
            <h2>Latest exports</h2>\(exportsHTML())
            <p>Latest finalized month: \(r?.latestFinalizedMonth ?? "none") · <a href="/metrics">metrics</a> · <a href="/stats">stats (JSON)</a></p>
            </body></html>
            """
    }
}

extension OperatorEndpoints {
    func exportsHTML() -> String {
        let exports = latestExports()
        if exports.isEmpty { return "<p>No exports yet.</p>" }
        return "<ul>" + exports.map { e in
            "<li>\(htmlEscape(e.folder)): " + e.files.map { "<a href=\"/exports/\(e.folder)/\($0)\">\(htmlEscape($0))</a>" }.joined(separator: " ") + "</li>"
        }.joined() + "</ul>"
    }
}

func htmlEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "&": out += "&amp;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
