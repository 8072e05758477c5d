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
        case "/healthz": return .text("ok\n")
        case "/readyz":
            let s = pipeline.status
            let body = "kafka_joined=\(s.kafkaJoined) postgres_healthy=\(s.postgresHealthy) assigned_partitions=\(s.assignedPartitions)\n"
            return .text(body, status: s.ready ? 200 : 503)
        case "/metrics":
            return .text(pipeline.metrics.registry.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/stats": return .json(statsJSON())
        case "/": return .html(statusPage())
        default: return .text("not found\n", status: 404)
        }
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
        let lag = s.lag.sorted { $0.key < $1.key }.map { "<tr><td>\(htmlEscape($0.key.description))</td><td>\($0.value)</td></tr>" }.joined()
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
            <h2>Lag</h2><table><tr><th>partition</th><th>lag</th></tr>\(lag)</table>
            <p>Latest finalized month: \(r?.latestFinalizedMonth ?? "none") · <a href="/metrics">metrics</a> · <a href="/stats">stats (JSON)</a></p>
            </body></html>
            """
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
