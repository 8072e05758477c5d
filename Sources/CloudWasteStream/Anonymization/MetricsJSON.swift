/// The jsonb text of a scan's metric summaries, with fixed keys in name order:
/// `{"CPUUtilization":{"avg":1.5,"p95":3,"trend":"down"}}`. Written byte by byte into the COPY
/// row that stores it; names are tokens and trends one of three words, so nothing needs escaping.
enum MetricsJSON {
    static func write(_ metrics: [MetricSummary], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, m) in metrics.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: m.name.utf8)
            append(#"":{"avg":"#, to: &out)
            out.append(contentsOf: jsonNumber(m.avg).utf8)
            append(#","p95":"#, to: &out)
            out.append(contentsOf: jsonNumber(m.p95).utf8)
            append(#","trend":"#, to: &out)
            if let trend = m.trend {
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: trend.utf8)
                out.append(UInt8(ascii: "\""))
            } else {
                append("null", to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    static func bytes(_ metrics: [MetricSummary]) -> [UInt8] {
        var out: [UInt8] = []
        write(metrics, into: &out)
        return out
    }

    @inline(__always)
    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}
