/// The jsonb text of a scan's metric summaries, with fixed keys in name order:
/// `{"CPUUtilization":{"avg":1.5,"p95":3,"trend":"down"}}`. Written byte by byte into a stack
/// buffer, then into the COPY row in one piece (written into the row byte by byte, every byte
/// was a call across modules and a uniqueness check of the row's storage); names are tokens and
/// trends one of three words, so nothing needs escaping.
enum MetricsJSON {
    /// Calls `body` with the text, valid during the call.
    static func withText<R>(_ metrics: [MetricSummary], _ body: (UnsafeRawBufferPointer) -> R) -> R {
        // Per metric: its name and trend (`null`: 4), 30 bytes of punctuation and quotes, and two
        // numbers of at most 24 characters each (`-2.2250738585072014e-308`), with room to spare.
        var bound = 2
        for i in metrics.indices { bound += metrics[i].name.utf8.count + (metrics[i].trend?.rawValue.utf8.count ?? 4) + 96 }
        return withUnsafeTemporaryAllocation(byteCount: bound, alignment: 1) { buffer in
            var text = ReservedBytes(buffer)
            write(metrics, into: &text)
            return body(UnsafeRawBufferPointer(rebasing: buffer[..<text.count]))
        }
    }

    static func write(_ metrics: [MetricSummary], into out: inout some ByteSink) {
        out.appendByte(UInt8(ascii: "{"))
        for i in metrics.indices {  // by index: read in place, not copied out with its strings
            if i > 0 { out.appendByte(UInt8(ascii: ",")) }
            out.appendByte(UInt8(ascii: "\""))
            append(metrics[i].name, to: &out)
            append(#"":{"avg":"#, to: &out)
            appendNumber(metrics[i].avg, to: &out)
            append(#","p95":"#, to: &out)
            appendNumber(metrics[i].p95, to: &out)
            append(#","trend":"#, to: &out)
            if let trend = metrics[i].trend {
                out.appendByte(UInt8(ascii: "\""))
                append(trend.rawValue, to: &out)
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

    /// A finite Double as `jsonNumber` writes it, without a String for the common values: whole
    /// numbers, and cents below 10⁹. For those the shortest text that reads back as the same Double
    /// (Swift's `description`) is the cents with trailing zeros dropped: `Double(n) / 100` is the
    /// Double nearest to n/100, and below 10⁹ no other decimal of two places is that near.
    static func appendNumber(_ d: Double, to out: inout some ByteSink) {
        if d == d.rounded(), abs(d) < 1e15 { return appendInteger(Int64(d), to: &out) }
        let cents = (d * 100).rounded()
        guard abs(d) < 1e9, cents / 100 == d else { return append(jsonNumber(d), to: &out) }
        let n = Int64(cents)
        if n < 0 { out.appendByte(UInt8(ascii: "-")) }
        let magnitude = n.magnitude
        appendInteger(Int64(magnitude / 100), to: &out)
        out.appendByte(UInt8(ascii: "."))
        let fraction = magnitude % 100
        out.appendByte(UInt8(ascii: "0") + UInt8(fraction / 10))
        if fraction % 10 != 0 { out.appendByte(UInt8(ascii: "0") + UInt8(fraction % 10)) }
    }

    private static func appendInteger(_ n: Int64, to out: inout some ByteSink) {
        if n < 0 { out.appendByte(UInt8(ascii: "-")) }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var m = n.magnitude
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                count += 1
                buffer[24 - count] = UInt8(ascii: "0") + UInt8(m % 10)
                m /= 10
            } while m > 0
            out.appendBytes(UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
        }
    }

    @inline(__always)
    private static func append(_ text: StaticString, to out: inout some ByteSink) {
        out.appendBytes(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    private static func append(_ text: borrowing String, to out: inout some ByteSink) {
        // Read in place (no copy to retain); only a bridged string takes the copy.
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { out.appendBytes(UnsafeRawBufferPointer($0)) }
        if done == nil {
            var copy = copy text
            copy.withUTF8 { out.appendBytes(UnsafeRawBufferPointer($0)) }
        }
    }
}
