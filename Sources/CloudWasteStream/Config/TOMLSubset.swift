/// The part of TOML our configuration uses: `[table]` / `[a.b]` headers, `key = value` with basic
/// and literal strings, integers, floats, booleans and one-line arrays, `#` comments. Anything else
/// is an error with its line number, so a typo never passes silently.
enum TOMLSubset {
    enum Value: Equatable {
        case string(String)
        case integer(Int)
        case float(Double)
        case bool(Bool)
        case array([Value])
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    /// Flattened `table.key` → value.
    static func parse(_ text: String) throws(ParseError) -> [(key: String, value: Value, line: Int)] {
        var out: [(key: String, value: Value, line: Int)] = []
        var seen = Set<String>()
        var table = ""
        // Split on scalars: "\r\n" is one Character, so splitting Characters on "\n" would miss CRLF lines.
        for (n, rawLine) in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = n + 1
            var scanner = Scanner(chars: Array(rawLine), line: lineNo)
            scanner.skipSpaces()
            if scanner.atEndOrComment { continue }
            if scanner.peek == "[" {
                scanner.index += 1
                let name = try scanner.dottedKey()
                guard scanner.consume("]") else { throw ParseError(line: lineNo, message: "expected ']' after table name") }
                try scanner.expectEnd()
                table = name
                continue
            }
            let key = try scanner.dottedKey()
            guard scanner.consume("=") else { throw ParseError(line: lineNo, message: "expected '=' after '\(key)'") }
            scanner.skipSpaces()
            let value = try scanner.value()
            try scanner.expectEnd()
            let full = table.isEmpty ? key : "\(table).\(key)"
            guard seen.insert(full).inserted else { throw ParseError(line: lineNo, message: "'\(full)' is set twice") }
            out.append((full, value, lineNo))
        }
        return out
    }

    private struct Scanner {
        var chars: [Unicode.Scalar]
        var line: Int
        var index = 0

        var peek: Unicode.Scalar? { index < chars.count ? chars[index] : nil }
        var atEndOrComment: Bool { peek == nil || peek == "#" || peek == "\r" }

        mutating func skipSpaces() { while peek == " " || peek == "\t" { index += 1 } }

        mutating func consume(_ c: Unicode.Scalar) -> Bool {
            skipSpaces()
            if peek == c { index += 1; return true }
            return false
        }

        mutating func expectEnd() throws(ParseError) {
            skipSpaces()
            guard atEndOrComment else { throw ParseError(line: line, message: "unexpected text after the value") }
        }

        mutating func dottedKey() throws(ParseError) -> String {
            var parts: [String] = []
            repeat {
                skipSpaces()
                var part = ""
                if peek == "\"" {
                    part = try basicString()
                } else {
                    while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" {
                        part.unicodeScalars.append(c)
                        index += 1
                    }
                }
                guard !part.isEmpty else { throw ParseError(line: line, message: "expected a key") }
                parts.append(part)
                skipSpaces()
            } while consume(".")
            return parts.joined(separator: ".")
        }

        mutating func value() throws(ParseError) -> Value {
            guard let c = peek else { throw ParseError(line: line, message: "missing value") }
            switch c {
            case "\"": return .string(try basicString())
            case "'":
                index += 1
                var s = ""
                while let ch = peek, ch != "'" { s.unicodeScalars.append(ch); index += 1 }
                guard peek == "'" else { throw ParseError(line: line, message: "unterminated string") }
                index += 1
                return .string(s)
            case "[":
                index += 1
                var items: [Value] = []
                skipSpaces()
                if consume("]") { return .array(items) }
                while true {
                    skipSpaces()
                    items.append(try value())
                    if consume(",") { skipSpaces(); if consume("]") { return .array(items) }; continue }
                    if consume("]") { return .array(items) }
                    throw ParseError(line: line, message: "expected ',' or ']' in array (arrays must fit on one line)")
                }
            default:
                var token = ""
                while let ch = peek, !(ch == " " || ch == "\t" || ch == "," || ch == "]" || ch == "#" || ch == "\r") {
                    token.unicodeScalars.append(ch)
                    index += 1
                }
                if token == "true" { return .bool(true) }
                if token == "false" { return .bool(false) }
                let digits = token.replacingOccurrences(of: "_", with: "")
                if let i = Int(digits) { return .integer(i) }
                if let d = Double(digits), d.isFinite { return .float(d) }
                throw ParseError(line: line, message: "'\(token)' is not a value (strings need quotes)")
            }
        }

        mutating func basicString() throws(ParseError) -> String {
            index += 1
            var s = ""
            while let c = peek {
                index += 1
                if c == "\"" { return s }
                if c == "\\" {
                    guard let e = peek else { break }
                    index += 1
                    switch e {
                    case "n": s += "\n"
                    case "t": s += "\t"
                    case "\\": s += "\\"
                    case "\"": s += "\""
                    default: throw ParseError(line: line, message: "unsupported escape '\\\(e)'")
                    }
                } else {
                    s.unicodeScalars.append(c)
                }
            }
            throw ParseError(line: line, message: "unterminated string")
        }
    }
}

import Foundation
