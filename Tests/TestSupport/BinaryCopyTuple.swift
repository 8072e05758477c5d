public import CloudWasteStream

/// Reads one binary COPY tuple back (tests check what the encoders wrote).
public struct BinaryCopyTuple {
    public let fields: [ArraySlice<UInt8>?]

    public init(_ bytes: ArraySlice<UInt8>) {
        var i = bytes.startIndex
        func int(_ n: Int) -> Int64 {
            var v: Int64 = 0
            for _ in 0..<n { v = v << 8 | Int64(bytes[i]); i += 1 }
            return v
        }
        let count = Int(int(2))
        var out: [ArraySlice<UInt8>?] = []
        for _ in 0..<count {
            let length = Int32(truncatingIfNeeded: int(4))
            if length < 0 { out.append(nil); continue }
            out.append(bytes[i..<(i + Int(length))])
            i += Int(length)
        }
        fields = out
    }

    public func text(_ f: Int) -> String? { fields[f].map { String(decoding: $0, as: UTF8.self) } }
    /// A bytea field (a pseudonym's 32 bytes) as lowercase hex.
    public func hex(_ f: Int) -> String? { fields[f].map { $0.map { String(format: "%02x", $0) }.joined() } }

    public func integer(_ f: Int) -> Int64? {
        guard let b = fields[f] else { return nil }
        var v: Int64 = b.first.map { $0 & 0x80 != 0 ? -1 : 0 } ?? 0
        for byte in b { v = v << 8 | Int64(byte) }
        return v
    }

    public func float8(_ f: Int) -> Double? { integer(f).map { Double(bitPattern: UInt64(bitPattern: $0)) } }

    /// A timestamptz as microseconds since the Unix epoch.
    public func timestamp(_ f: Int) -> Timestamp? { integer(f).map { Timestamp(micros: $0 + 946_684_800_000_000) } }
}
