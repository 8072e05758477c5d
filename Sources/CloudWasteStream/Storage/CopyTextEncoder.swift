/// Builds rows in PostgreSQL's COPY text format: tab-separated, `\N` for NULL, with backslash,
/// tab, newline and carriage return escaped. Appends straight into a byte buffer.
struct CopyTextEncoder {
    var buffer: [UInt8] = []
    private var first = true

    init(capacity: Int = 1 << 16) { buffer.reserveCapacity(capacity) }

    private mutating func separator() {
        if first { first = false } else { buffer.append(0x09) }
    }

    mutating func text(_ s: String?) {
        separator()
        guard let s else { buffer.append(contentsOf: [0x5C, 0x4E]); return }
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            buffer.append(contentsOf: utf8)
            return
        }
        for b in utf8 {
            switch b {
            case 0x5C: buffer.append(contentsOf: [0x5C, 0x5C])
            case 0x09: buffer.append(contentsOf: [0x5C, 0x74])
            case 0x0A: buffer.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: buffer.append(contentsOf: [0x5C, 0x72])
            default: buffer.append(b)
            }
        }
    }

    /// A value known to need no escaping (hashes, numbers, enum values, timestamps).
    mutating func plain(_ s: String) {
        separator()
        buffer.append(contentsOf: s.utf8)
    }

    mutating func int(_ v: Int?) {
        guard let v else { text(nil); return }
        separator()
        appendDigits(Int64(v), width: 1)
    }

    mutating func int64(_ v: Int64) {
        separator()
        appendDigits(v, width: 1)
    }

    mutating func double(_ v: Double?) { if let v { plain("\(v)") } else { text(nil) } }

    /// `2026-03-31 23:59:59.123456+00`, written digit by digit (no intermediate String).
    mutating func timestamp(_ t: Timestamp?) {
        guard let t else { text(nil); return }
        separator()
        let c = t.civil
        appendDigits(Int64(c.year), width: 4); buffer.append(0x2D)
        appendDigits(Int64(c.month), width: 2); buffer.append(0x2D)
        appendDigits(Int64(c.day), width: 2); buffer.append(0x20)
        appendDigits(Int64(c.hour), width: 2); buffer.append(0x3A)
        appendDigits(Int64(c.minute), width: 2); buffer.append(0x3A)
        appendDigits(Int64(c.second), width: 2)
        if c.micro != 0 { buffer.append(0x2E); appendDigits(Int64(c.micro), width: 6) }
        buffer.append(contentsOf: [0x2B, 0x30, 0x30])
    }

    /// Decimal digits of `v`, zero-padded to `width`.
    private mutating func appendDigits(_ v: Int64, width: Int) {
        if v < 0 { buffer.append(0x2D); appendDigits(-v, width: width); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(48 + x % 10)
                x /= 10
                n += 1
            } while x > 0
            while n < width { d[n] = 48; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { buffer.append(d[i]) }
        }
    }
    mutating func textArray(_ values: [String]) { text(values.postgresText) }

    mutating func endRow() {
        buffer.append(0x0A)
        first = true
    }
}

import CloudWastePostgres
