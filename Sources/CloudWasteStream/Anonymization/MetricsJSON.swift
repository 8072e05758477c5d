/// The jsonb text of a scan's metric summaries, with fixed keys in name order:
/// `{"CPUUtilization":{"avg":1.5,"p95":3,"trend":"down"}}`. Written byte by byte into the COPY
/// row that stores it; names are tokens and trends one of three words, so nothing needs escaping.
enum MetricsJSON {
    static func write(_ metrics: [MetricSummary], into out: inout some ByteSink) {
        out.appendByte(UInt8(ascii: "{"))
        for (i, m) in metrics.enumerated() {
            if i > 0 { out.appendByte(UInt8(ascii: ",")) }
            out.appendByte(UInt8(ascii: "\""))
            append(m.name, to: &out)
            append(#"":{"avg":"#, to: &out)
            append(jsonNumber(m.avg), to: &out)
            append(#","p95":"#, to: &out)
            append(jsonNumber(m.p95), to: &out)
            append(#","trend":"#, to: &out)
            if let trend = m.trend {
                out.appendByte(UInt8(ascii: "\""))
                append(trend, to: &out)
                out.appendByte(UInt8(ascii: "\""))
            } else {
                append("null", to: &out)
            }
            out.appendByte(UInt8(ascii: "}"))
        }
        out.appendByte(UInt8(ascii: "}"))
    }

    static func bytes(_ metrics: [MetricSummary]) -> [UInt8] {
        var out: [UInt8] = []
        write(metrics, into: &out)
        return out
    }

    @inline(__always)
    private static func append(_ text: StaticString, to out: inout some ByteSink) {
        out.appendBytes(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    private static func append(_ text: String, to out: inout some ByteSink) {
        var text = text
        text.withUTF8 { out.appendBytes(UnsafeRawBufferPointer($0)) }
    }
}
