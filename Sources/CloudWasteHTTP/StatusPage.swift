import CloudWasteStream
import Foundation

/// The status page `/`: readable at a glance, refreshed every 10 s, drawn from memory only.
/// Readiness (and why not), each writer's state, records/s and lag over the last hour, the
/// monthly cost trends with axes and values, rows per table and topic, dead letters, lag per
/// partition and the latest exports.
enum StatusPage {
    static func render(state: OperatorState, exports: ExportDirectory, now: Date = Date()) -> String {
        let s = state.pipeline.status
        let doc = StatusDocument(state: state, now: now)
        let report = doc.database
        let history = state.history
        var html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>CloudWaste Stream</title>
            <meta http-equiv="refresh" content="10">
            <style>body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}table{border-collapse:collapse;margin-bottom:1.5em}
            td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}
            .ok{color:#080}.bad{color:#b00}.legend{font-size:90%}h2{margin-top:1.4em}</style></head><body>
            <h1>CloudWaste Stream</h1>

            """
        let rate = doc.recordsPerSecondLastMinute.map { "\(Int($0)) records/s (last minute)" } ?? "records/s: not enough samples yet"
        let lastCommit = doc.lastCommitAgeSeconds.map { "last commit \(age($0)) ago" } ?? "no commit yet"
        html += "<p id=\"readiness\" class=\"\(s.ready ? "ok" : "bad")\">\(s.ready ? "ready" : "not ready: \(escape(s.notReadyReason ?? "starting"))")"
        html += " · \(s.assignedPartitions) partitions · \(s.recordsCommitted) records committed · \(rate) · \(lastCommit)</p>\n"

        html += "<h2>Writers</h2><table id=\"writers\"><tr><th>writer</th><th>state</th><th>batches</th><th>records</th><th>last commit</th><th>last error</th></tr>"
        for w in doc.writers {
            html += "<tr><td>\(w.index)</td><td>\(w.state)</td><td>\(w.batchesCommitted)</td><td>\(w.recordsCommitted)</td>"
            html += "<td>\(w.lastCommitAgeSeconds.map { age($0) + " ago" } ?? "—")</td><td>\(escape(w.lastError ?? ""))</td></tr>"
        }
        html += "</table>\n"

        html += "<h2>Last hour</h2>"
        let rates = history.rates.map { (ago: now.timeIntervalSince($0.at), value: $0.perSecond) }
        html += SVGChart.line(points: rates, span: 3600, name: "records/s", color: "#2c7fb8", unit: "records/s", id: "throughput-chart")
        let lags = history.samples.map { (ago: now.timeIntervalSince($0.at), value: Double($0.lag)) }
        html += SVGChart.line(points: lags, span: 3600, name: "lag", color: "#d95f02", unit: "records behind", id: "lag-chart")

        html += "<h2>Cost trends</h2><div id=\"cost-trends\">"
        let trends = report?.costTrends ?? []
        if trends.isEmpty { html += "<p>No cost trends yet.</p>" }
        for currency in Array(Set(trends.map(\.currency))).sorted().prefix(3) {
            let months = trends.filter { $0.currency == currency }.suffix(12)
            html += "<h3>\(escape(currency))</h3>" + SVGChart.bars(labels: months.map(\.month), series: [
                .init(name: "waste detected per month", color: "#c0392b", values: months.map(\.wasteDetected)),
                .init(name: "waste eliminated per month", color: "#27ae60", values: months.map(\.wasteEliminated)),
                .init(name: "billed for detected waste", color: "#7f8c8d", values: months.map(\.billedWaste)),
            ], unit: currency, id: "cost-trend-chart-\(currency)")
        }
        html += "</div>\n"

        html += "<h2>Tables</h2><table id=\"tables\"><tr><th>table</th><th>rows</th><th>stored, 7 days</th><th>stored, 30 days</th><th>event time, 7 days</th><th>event time, 30 days</th></tr>"
        for t in report?.tables ?? [] {
            html += "<tr><td>\(t.table)</td><td>\(t.total)</td><td>\(t.last7Days)</td><td>\(t.last30Days)</td>"
            html += "<td>\(t.eventTimeLast7Days.map(String.init) ?? "—")</td><td>\(t.eventTimeLast30Days.map(String.init) ?? "—")</td></tr>"
        }
        html += "</table>\n"

        let deadByTopic = Dictionary((report?.deadLettersByTopic ?? []).map { ($0.reason, $0.count) }, uniquingKeysWith: +)
        html += "<h2>Topics</h2><table id=\"topics\"><tr><th>topic</th><th>records read (since start)</th><th>dead letters (stored)</th></tr>"
        for topic in Set(doc.recordsInByTopic.keys).union(deadByTopic.keys).sorted() {
            html += "<tr><td>\(escape(topic))</td><td>\(doc.recordsInByTopic[topic] ?? 0)</td><td>\(deadByTopic[topic] ?? 0)</td></tr>"
        }
        html += "</table>\n"

        html += "<h2>Dead letters</h2><table id=\"dead-letters\"><tr><th>reason</th><th>count</th></tr>"
        for d in report?.deadLettersByReason ?? [] { html += "<tr><td>\(escape(d.reason))</td><td>\(d.count)</td></tr>" }
        html += "</table>\n"

        html += "<h2>Lag</h2><table id=\"lag\"><tr><th>partition</th><th>records behind</th></tr>"
        html += "<tr><td>all \(s.lag.count) partitions</td><td>\(doc.lagTotal)</td></tr>"
        for (tp, l) in s.lag.filter({ $0.value > 0 }).sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }).prefix(10) {
            html += "<tr><td>\(escape(tp.description))</td><td>\(l)</td></tr>"
        }
        html += "</table>\n"

        html += "<h2>Latest exports</h2><div id=\"exports\">"
        let latest = exports.latest()
        if latest.isEmpty { html += "<p>No exports yet.</p>" }
        html += "<ul>" + latest.map { e in
            "<li>\(escape(e.folder)): " + e.files.map { "<a href=\"/exports/\(e.folder)/\($0)\">\(escape($0))</a>" }.joined(separator: " ") + "</li>"
        }.joined() + "</ul></div>\n"
        let snapshotAge = doc.databaseSnapshotAgeSeconds.map { "database figures \(age($0)) old" } ?? "database figures not read yet"
        html += "<p>Latest finalized month: \(report?.latestFinalizedMonth ?? "none") · \(snapshotAge)"
        html += (doc.databaseError.map { " · <span class=\"bad\">last refresh failed: \(escape($0))</span>" } ?? "")
        html += " · <a href=\"/metrics\">metrics</a> · <a href=\"/stats\">stats (JSON)</a></p>\n</body></html>\n"
        return html
    }

    static func age(_ seconds: Double) -> String {
        switch seconds {
        case ..<60: "\(Int(seconds)) s"
        case ..<3600: "\(Int(seconds / 60)) min"
        default: "\(Int(seconds / 3600)) h"
        }
    }
}
