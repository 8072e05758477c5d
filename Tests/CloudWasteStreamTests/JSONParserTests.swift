import Testing
@testable import CloudWasteStream

/// The strict RFC 8259 parser that every input record goes through.
@Suite struct JSONParserTests {
    private func parse(_ text: String, maxDepth: Int = 32) throws(JSONParseError) -> JSONValue {
        try JSONParser(maxDepth: maxDepth).parse(Array(text.utf8))
    }

    private func parse(bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try JSONParser().parse(bytes)
    }

    /// True when `text` is rejected as malformed (any offset).
    private func isMalformed(_ text: String) -> Bool {
        isMalformed(bytes: Array(text.utf8))
    }

    private func isMalformed(bytes: [UInt8]) -> Bool {
        do {
            _ = try parse(bytes: bytes)
            return false
        } catch {
            if case .malformed = error { return true }
            return false
        }
    }

    // MARK: - Structure

    @Test func parsesNestedObjectsAndArrays() throws {
        let value = try parse(#" { "a" : [1, 2.5, -3e2, true, false, null, "s", [], {}], "b": {"c": {"d": "e"}} } "#)
        #expect(value == .object([
            "a": .array([.number(1), .number(2.5), .number(-300), .bool(true), .bool(false), .null,
                         .string("s"), .array([]), .object([:])]),
            "b": .object(["c": .object(["d": .string("e")])]),
        ]))
    }

    @Test func acceptsScalarRootsAndSurroundingWhitespace() throws {
        #expect(try parse(" \t\r\n42\n ") == .number(42))
        #expect(try parse("\"x\"") == .string("x"))
        #expect(try parse("null") == .null)
        #expect(try parse("true") == .bool(true))
        #expect(try parse("[ ]") == .array([]))
        #expect(try parse("{ }") == .object([:]))
    }

    @Test func typeNames() throws {
        #expect(JSONValue.null.typeName == "null")
        #expect(JSONValue.bool(true).typeName == "boolean")
        #expect(JSONValue.number(1).typeName == "number")
        #expect(JSONValue.string("").typeName == "string")
        #expect(JSONValue.array([]).typeName == "array")
        #expect(JSONValue.object([:]).typeName == "object")
    }

    @Test(arguments: [
        "", " ", "{", "[", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{a:1}", "[1 2]",
        "{\"a\":1 \"b\":2}", "'x'", "tru", "nul", "fals", "True", "\"abc", "[\"abc]", "}", "]", ",",
    ])
    func rejectsSyntaxErrors(_ text: String) {
        #expect(isMalformed(text), "\(text.debugDescription) should be malformed")
    }

    @Test func malformedReportsTheOffset() {
        #expect(throws: JSONParseError.malformed(offset: 3)) { try parse("[1,]") }
        #expect(throws: JSONParseError.malformed(offset: 0)) { try parse("") }
        #expect(throws: JSONParseError.malformed(offset: 3)) { try parse("{} x") }
    }

    // MARK: - Trailing garbage

    @Test(arguments: ["{} x", "{}{}", "[1]]", "1 2", "true false", "nullx", "truex", "\"a\"\"b\"", "{}\u{0}", "0 0"])
    func rejectsTrailingGarbage(_ text: String) {
        #expect(isMalformed(text), "\(text.debugDescription) should be malformed")
    }

    // MARK: - Strings

    @Test func decodesAllSimpleEscapes() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""a\u0041b""#) == .string("aAb"))
        #expect(try parse(#""\u00e9\u00E9""#) == .string("éé"))
        #expect(try parse(#""\u20AC""#) == .string("€"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
    }

    @Test func decodesSurrogatePairs() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""x\uD834\uDD1Ey""#) == .string("x𝄞y"))
    }

    @Test func keepsRawUTF8() throws {
        #expect(try parse("\"propriétaire équipe 😀\"") == .string("propriétaire équipe 😀"))
        #expect(try parse("{\"clé\":\"données\"}") == .object(["clé": .string("données")]))
        // Raw UTF-8 mixed with escapes (the slow path).
        #expect(try parse("\"é\\n😀\"") == .string("é\n😀"))
    }

    @Test(arguments: [
        #""\ud83d""#,            // lone high surrogate at the end
        #""\ud83dx""#,           // high surrogate followed by a plain character
        #""\ud83d\n""#,          // high surrogate followed by another escape
        #""\ud83d\u0041""#,      // high surrogate followed by a non-surrogate
        #""\ud83d\ud83d""#,      // two high surrogates
        #""\ude00""#,            // lone low surrogate
        #""\udfff\ud83d""#,      // reversed pair
    ])
    func rejectsLoneSurrogateEscapes(_ text: String) {
        #expect(isMalformed(text), "\(text) should be malformed")
    }

    @Test(arguments: [#""\x""#, #""\u12""#, #""\u12G4""#, #""\U0041""#, #""\'""#, #""\""#, #""\u""#, "\"\\\u{e9}\""])
    func rejectsBadEscapes(_ text: String) {
        #expect(isMalformed(text), "\(text) should be malformed")
    }

    @Test(arguments: [UInt8(0x00), 0x01, 0x09, 0x0A, 0x0D, 0x1F])
    func rejectsRawControlCharactersInStrings(_ control: UInt8) {
        // Fast path (no escapes before the control character) ...
        #expect(isMalformed(bytes: [0x22, 0x61, control, 0x62, 0x22]))
        // ... and slow path (after an escape).
        #expect(isMalformed(bytes: Array(#""\n"#.utf8) + [control, 0x22]))
        // ... and in a key.
        #expect(isMalformed(bytes: [0x7B, 0x22, control, 0x22, 0x3A, 0x31, 0x7D]))
    }

    @Test func acceptsDELAndEscapedControls() throws {
        #expect(try parse("\"\u{7F}\"") == .string("\u{7F}"))
        #expect(try parse(#""\u001f""#) == .string("\u{1F}"))
    }

    @Test(arguments: [
        [UInt8(0x22), 0xFF, 0x22],                       // never valid
        [0x22, 0xC0, 0xAF, 0x22],                        // overlong '/'
        [0x22, 0xE2, 0x82, 0x22],                        // truncated 3-byte sequence
        [0x22, 0xED, 0xA0, 0x80, 0x22],                  // UTF-8-encoded surrogate
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],            // above U+10FFFF
        [0x22, 0x80, 0x22],                              // lone continuation byte
        [0x22, 0x5C, 0x6E, 0xFF, 0x22],                  // after an escape (slow path)
        [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D],      // in a key
        [0x5B, 0x22, 0x6F, 0x6B, 0x22, 0x2C, 0x22, 0xC3, 0x28, 0x22, 0x5D],  // second array element
    ])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.invalidUTF8) { try parse(bytes: bytes) }
    }

    // MARK: - Numbers

    @Test(arguments: [
        ("0", 0.0), ("-0", -0.0), ("7", 7), ("-12", -12), ("1.5", 1.5), ("0.25", 0.25), ("-0.5", -0.5),
        ("1e3", 1000), ("1E3", 1000), ("1e+3", 1000), ("25e-2", 0.25), ("-1.25E-2", -0.0125),
        ("123456789012", 123_456_789_012), ("0e0", 0), ("1.7976931348623157e308", Double.greatestFiniteMagnitude),
    ])
    func parsesValidNumbers(_ text: String, _ expected: Double) throws {
        #expect(try parse(text) == .number(expected))
        #expect(try parse("[\(text)]") == .array([.number(expected)]))
    }

    @Test(arguments: [
        "01", "-01", "00", "1.", "-1.", ".5", "-.5", "+1", "1.e3", "1e", "1e+", "1E-", "-", "--1",
        "NaN", "nan", "Infinity", "-Infinity", "inf", "0x10", "1_000", "1,5", "[01]", "[1.]", "[.5]", "[+1]",
        "[NaN]", "{\"a\":Infinity}", "{\"a\":-Infinity}", "{\"a\":NaN}",
    ])
    func rejectsInvalidNumbers(_ text: String) {
        #expect(isMalformed(text), "\(text) should be malformed")
    }

    @Test func overflowingNumbersAreOutOfRange() {
        #expect(throws: JSONParseError.numberOutOfRange(topLevelKey: nil)) { try parse("1e400") }
        #expect(throws: JSONParseError.numberOutOfRange(topLevelKey: nil)) { try parse("[-1e400]") }
        #expect(throws: JSONParseError.numberOutOfRange(topLevelKey: "cost")) { try parse(#"{"id":"x","cost":1e400}"#) }
        #expect(throws: JSONParseError.numberOutOfRange(topLevelKey: "points")) {
            try parse(#"{"a":1,"points":[{"ts":"x","value":-1.5e999}],"z":2}"#)
        }
        let huge = "1" + String(repeating: "0", count: 400)
        #expect(throws: JSONParseError.numberOutOfRange(topLevelKey: "n")) { try parse("{\"n\":\(huge)}") }
    }

    @Test func tinyNumbersUnderflowToZeroInsteadOfFailing() throws {
        guard case .number(let d) = try parse("1e-400") else {
            Issue.record("not a number")
            return
        }
        #expect(d.isFinite)
        #expect(d >= 0 && d < 1e-300)
    }

    // MARK: - Duplicate keys

    @Test func duplicateKeysAreRejected() {
        #expect(throws: JSONParseError.duplicateKey("a", topLevelKey: nil)) { try parse(#"{"a":1,"a":1}"#) }
        #expect(throws: JSONParseError.duplicateKey("a", topLevelKey: nil)) { try parse(#"{"a":1,"b":2,"a":3}"#) }
        #expect(throws: JSONParseError.duplicateKey("k", topLevelKey: "x")) { try parse(#"{"w":0,"x":{"k":1,"k":2}}"#) }
        #expect(throws: JSONParseError.duplicateKey("k", topLevelKey: "points")) {
            try parse(#"{"points":[{"ts":"t","k":1},{"k":1,"k":2}]}"#)
        }
        #expect(throws: JSONParseError.duplicateKey("deep", topLevelKey: "m")) {
            try parse(#"{"m":{"a":{"b":{"deep":1,"deep":null}}}}"#)
        }
    }

    @Test func sameKeyInDifferentObjectsIsFine() throws {
        let v = try parse(#"{"a":{"k":1},"b":{"k":2},"k":3}"#)
        #expect(v == .object(["a": .object(["k": .number(1)]), "b": .object(["k": .number(2)]), "k": .number(3)]))
    }

    @Test func keysDifferingOnlyInCaseOrEscapingAreDistinctOrDuplicate() throws {
        #expect(try parse(#"{"a":1,"A":2}"#) == .object(["a": .number(1), "A": .number(2)]))
        // "\u0061" is "a": the same key after unescaping.
        #expect(throws: JSONParseError.duplicateKey("a", topLevelKey: nil)) { try parse(#"{"a":1,"\u0061":2}"#) }
    }

    // MARK: - Depth

    @Test func depthLimitIsExact() throws {
        let ok = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        _ = try parse(ok, maxDepth: 32)
        let tooDeep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(throws: JSONParseError.tooDeep) { try parse(tooDeep, maxDepth: 32) }

        let okObjects = String(repeating: "{\"a\":", count: 31) + "{}" + String(repeating: "}", count: 31)
        _ = try parse(okObjects)
        let deepObjects = String(repeating: "{\"a\":", count: 32) + "{}" + String(repeating: "}", count: 32)
        #expect(throws: JSONParseError.tooDeep) { try parse(deepObjects) }

        // Scalars do not count as a level.
        _ = try parse("[[1]]", maxDepth: 2)
        #expect(throws: JSONParseError.tooDeep) { try parse("[[[1]]]", maxDepth: 2) }
    }

    @Test func defaultMaxDepthIs32() {
        #expect(JSONParser().maxDepth == 32)
        let tooDeep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(throws: JSONParseError.tooDeep) { try JSONParser().parse(Array(tooDeep.utf8)) }
    }

    @Test func veryDeepInputDoesNotCrash() {
        let arrays = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.tooDeep) { try parse(arrays) }
        let unclosed = String(repeating: "[", count: 10_000)
        #expect(throws: JSONParseError.tooDeep) { try parse(unclosed) }
        let objects = String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect(throws: JSONParseError.tooDeep) { try parse(objects) }
    }
}
