/// A parsed JSON document. Duplicate object names are rejected by the parser, so there is never
/// a question of which duplicate wins.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// Why bytes are not a JSON document we accept.
public enum JSONParseError: Error, Equatable, Sendable {
    case invalidUTF8
    case malformed(offset: Int)
    case tooDeep
    /// `topLevelKey` is the field of the root object that holds the duplicate (nil at the root).
    case duplicateKey(String, topLevelKey: String?)
    /// A number whose magnitude does not fit a Double (e.g. 1e400), inside `topLevelKey`.
    case numberOutOfRange(topLevelKey: String?)
}

/// A strict RFC 8259 parser over bytes into a tree: UTF-8 validated, no NaN/Infinity, no trailing
/// garbage, bounded depth, duplicate object keys rejected, numbers that overflow rejected. For
/// configuration files and tests; records are decoded through `JSONTape`, which keeps these rules
/// without building a tree (the differential tests hold the two together). Fuzzed (see Fuzz/).
public struct JSONParser {
    public var maxDepth: Int

    public init(maxDepth: Int = 32) { self.maxDepth = maxDepth }

    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            var cursor = Cursor(bytes: buffer, maxDepth: maxDepth)
            cursor.skipWhitespace()
            let value = try cursor.parseValue(depth: 0)
            cursor.skipWhitespace()
            if cursor.index != buffer.count { throw .malformed(offset: cursor.index) }
            return value
        }
    }
}

private struct Cursor {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0
    /// The root object's field being parsed, for error reports.
    var topLevelKey: String?

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    @inline(__always) var atEnd: Bool { index >= bytes.count }
    @inline(__always) var current: UInt8 { bytes[index] }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard !atEnd else { throw .malformed(offset: index) }
        switch current {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw .malformed(offset: index)
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .malformed(offset: index) }
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for i in 0..<count where bytes[index + i] != expected[i] { throw .malformed(offset: index + i) }
        index += count
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1
        var fields = JSONObjectBuilder(capacity: depth == 1 ? 24 : 4)
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "}") { index += 1; return .object(fields.object) }
        while true {
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: "\"") else { throw .malformed(offset: index) }
            let key = try parseString()
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: ":") else { throw .malformed(offset: index) }
            index += 1
            skipWhitespace()
            if depth == 1 { topLevelKey = key }
            let value = try parseValue(depth: depth)
            if !fields.add(key, value) {
                throw .duplicateKey(key, topLevelKey: depth == 1 ? nil : topLevelKey)
            }
            skipWhitespace()
            guard !atEnd else { throw .malformed(offset: index) }
            if current == UInt8(ascii: ",") { index += 1; continue }
            if current == UInt8(ascii: "}") { index += 1; return .object(fields.object) }
            throw .malformed(offset: index)
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard !atEnd else { throw .malformed(offset: index) }
            if current == UInt8(ascii: ",") { index += 1; continue }
            if current == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw .malformed(offset: index)
        }
    }

    mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, ASCII or valid UTF-8 (validated below).
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                return try Self.validatedString(slice)
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw .malformed(offset: index) }
            index += 1
        }
        guard index < bytes.count else { throw .malformed(offset: index) }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                return try out.withUnsafeBufferPointer { (p) throws(JSONParseError) -> String in try Self.validatedString(p) }
            }
            if b < 0x20 { throw .malformed(offset: index) }
            if b != UInt8(ascii: "\\") { out.append(b); index += 1; continue }
            index += 1
            guard index < bytes.count else { throw .malformed(offset: index) }
            let e = bytes[index]
            index += 1
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
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw .malformed(offset: index)
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw .malformed(offset: index) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw .malformed(offset: index)
                }
                guard let u = Unicode.Scalar(scalar) else { throw .malformed(offset: index) }
                out.append(contentsOf: UTF8.encode(u)!)
            default:
                throw .malformed(offset: index - 1)
            }
        }
        throw .malformed(offset: index)
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .malformed(offset: index) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = JSONEscapes.hexDigit(bytes[index]) else { throw .malformed(offset: index) }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    static func validatedString(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> String {
        var ascii = true
        for b in bytes where b >= 0x80 { ascii = false; break }
        if ascii { return String(decoding: bytes, as: UTF8.self) }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
        return s
    }

    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        guard !atEnd else { throw .malformed(offset: index) }
        if current == UInt8(ascii: "0") {
            index += 1
        } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(current) {
            while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
        } else {
            throw .malformed(offset: index)
        }
        if !atEnd, current == UInt8(ascii: ".") {
            index += 1
            let digits = index
            while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
            if index == digits { throw .malformed(offset: index) }
        }
        if !atEnd, current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if !atEnd, current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            let digits = index
            while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
            if index == digits { throw .malformed(offset: index) }
        }
        if let exact = JSONNumbers.fastDecimal(UnsafeBufferPointer(rebasing: bytes[start..<index])) { return exact }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text) else { throw .malformed(offset: start) }
        if !value.isFinite { throw .numberOutOfRange(topLevelKey: topLevelKey) }
        return value
    }
}
