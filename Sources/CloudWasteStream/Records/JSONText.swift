/// The byte-level rules of JSON text that both parsers share: escapes, UTF-8 validity, numbers.

/// Backslash escapes inside JSON strings (RFC 8259 §7).
enum JSONEscapes {
    @inline(__always)
    static func hexDigit(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Appends the string's bytes with escapes resolved. The input is the text between the quotes
    /// of a string that the parser accepted; returns false on a malformed escape.
    @discardableResult
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) -> Bool {
        var i = 0
        while i < raw.count {
            let b = raw[i]
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            guard i + 1 < raw.count else { return false }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4(raw, at: i) else { return false }
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u"),
                          let low = hex4(raw, at: i + 2), (0xDC00...0xDFFF).contains(low) else { return false }
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { return false }
                out.append(contentsOf: UTF8.encode(u)!)
            default:
                return false
            }
        }
        return true
    }

    static func hex4(_ raw: UnsafeBufferPointer<UInt8>, at i: Int) -> UInt32? {
        guard i + 4 <= raw.count else { return nil }
        var value: UInt32 = 0
        for k in i..<(i + 4) {
            guard let d = hexDigit(raw[k]) else { return nil }
            value = value << 4 | d
        }
        return value
    }

    /// Whether every run of raw bytes between escapes is valid UTF-8 (escapes were checked by the
    /// parser and always stand for whole scalars).
    static func rawRunsAreValidUTF8(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        var runStart = 0
        var i = 0
        while i < raw.count {
            guard raw[i] == UInt8(ascii: "\\") else { i += 1; continue }
            if !UTF8Validation.isValid(UnsafeBufferPointer(rebasing: raw[runStart..<i])) { return false }
            i += raw[i + 1] == UInt8(ascii: "u") ? 6 : 2
            runStart = i
        }
        return UTF8Validation.isValid(UnsafeBufferPointer(rebasing: raw[runStart..<raw.count]))
    }
}

/// Well-formed UTF-8 (Unicode 15 table 3-7: no overlong forms, no surrogates, nothing past
/// U+10FFFF), checked in place without building a String.
enum UTF8Validation {
    static func isValid(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            @inline(__always) func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
                k < n && b[k] >= lo && b[k] <= hi
            }
            switch c {
            case 0xC2...0xDF:
                guard cont(i + 1) else { return false }
                i += 2
            case 0xE0:
                guard cont(i + 1, 0xA0), cont(i + 2) else { return false }
                i += 3
            case 0xE1...0xEC, 0xEE...0xEF:
                guard cont(i + 1), cont(i + 2) else { return false }
                i += 3
            case 0xED:
                guard cont(i + 1, 0x80, 0x9F), cont(i + 2) else { return false }
                i += 3
            case 0xF0:
                guard cont(i + 1, 0x90), cont(i + 2), cont(i + 3) else { return false }
                i += 4
            case 0xF1...0xF3:
                guard cont(i + 1), cont(i + 2), cont(i + 3) else { return false }
                i += 4
            case 0xF4:
                guard cont(i + 1, 0x80, 0x8F), cont(i + 2), cont(i + 3) else { return false }
                i += 4
            default:
                return false
            }
        }
        return true
    }
}

/// JSON numbers as doubles.
enum JSONNumbers {
    /// Plain decimals with at most 15 significant digits and no exponent: the mantissa and the
    /// power of ten are exact doubles, so one IEEE division gives the correctly rounded value,
    /// the same as strtod, without building a String.
    static func fastDecimal(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
        var i = 0
        var negative = false
        if i < b.count, b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var mantissa: Int64 = 0
        var digits = 0
        var fraction = 0
        var seenPoint = false
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: ".") {
                if seenPoint { return nil }
                seenPoint = true
            } else if c >= 48 && c <= 57 {
                mantissa = mantissa * 10 + Int64(c - 48)
                digits += 1
                if seenPoint { fraction += 1 }
                if digits > 15 { return nil }
            } else {
                return nil  // exponent: the slow path
            }
            i += 1
        }
        guard digits > 0 else { return nil }
        var value = Double(mantissa)
        if fraction > 0 { value /= powersOfTen[fraction] }
        return negative ? -value : value
    }

    static let powersOfTen: [Double] = (0...15).map { (0..<$0).reduce(1.0) { r, _ in r * 10 } }
}
