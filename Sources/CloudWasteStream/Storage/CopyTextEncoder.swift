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
        for b in s.utf8 {
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

    mutating func int(_ v: Int?) { if let v { plain(String(v)) } else { text(nil) } }
    mutating func int64(_ v: Int64) { plain(String(v)) }
    mutating func double(_ v: Double?) { if let v { plain("\(v)") } else { text(nil) } }
    mutating func timestamp(_ t: Timestamp?) { if let t { plain(t.postgresText) } else { text(nil) } }
    mutating func textArray(_ values: [String]) { text(values.postgresText) }

    mutating func endRow() {
        buffer.append(0x0A)
        first = true
    }
}

import CloudWastePostgres
