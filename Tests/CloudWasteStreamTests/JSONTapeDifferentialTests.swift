import Foundation
import Testing
@testable import CloudWasteStream
import CloudWasteDevTools

/// The record decoder's one-pass tape against the recursive-descent parser it replaced
/// (`ReferenceJSONParser`): on the same bytes both accept, with the same values, or both refuse,
/// with the same error (the same offset for malformed text). Inputs: generated traffic, the fuzzing corpus, the topic examples,
/// and seeded mutations of all of them (bytes flipped, cut, doubled, and JSON tokens spliced in).
@Suite struct JSONTapeDifferentialTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    enum Outcome: Equatable, CustomStringConvertible {
        case value(JSONValue)
        case error(JSONParseError)
        var description: String {
            switch self {
            case .value(let v): "value(\(v.typeName))"
            case .error(let e): "error(\(e))"
            }
        }
    }

    static func viaTree(_ bytes: [UInt8], maxDepth: Int) -> Outcome {
        do { return .value(try ReferenceJSONParser(maxDepth: maxDepth).parse(bytes)) } catch { return .error(error) }
    }

    static func viaTape(_ bytes: [UInt8], maxDepth: Int, tape: inout JSONTape) -> Outcome {
        tape.maxDepth = maxDepth
        return bytes.withUnsafeBufferPointer { b -> Outcome in
            do throws(JSONParseError) {
                try tape.parse(b)
                return .value(JSONParser.tree(tape, 0, b))
            } catch {
                return .error(error)
            }
        }
    }

    static func seeds() throws -> [[UInt8]] {
        var out = TrafficGenerator(seed: 7, badRecordShare: 0.05).messages(count: 600).map(\.value)
        let fm = FileManager.default
        for folder in ["Fuzz/corpus", "Fuzz/regressions"] {
            let dir = packageRoot.appendingPathComponent(folder)
            for name in try fm.contentsOfDirectory(atPath: dir.path).sorted() {
                let data = try Data(contentsOf: dir.appendingPathComponent(name))
                out.append(Array(data.dropFirst()))  // byte 0 selects the fuzz target's topic
            }
        }
        out += [
            #"{"a":"\u00e9\ud83d\ude00\n\"","b":[1,-0,2.5e3,1e400],"a":1}"#, #"{"k":{"x":1,"x":2}}"#,
            #"{"\u0061":1,"a":2}"#, #"{"e":"caf\u00e9","f":"café"}"#, "{\"bad\":\"\u{7f}\\uD800\"}",
            #"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
            #"{"big":123456789012345678901234567890,"neg":-0.000000000000000000001}"#,
        ].map { Array($0.utf8) }
        out.append(Array(#"{"s":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8))
        out.append(Array(#"{"s":"\n"#.utf8) + [0xE2, 0x82] + Array(#"\t"}"#.utf8))
        let wide = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        out.append(Array("{\(wide),\"k3\":0}".utf8))
        out.append(Array("{\(wide),\"k\\u0033\":0}".utf8))
        return out
    }

    static let splices: [[UInt8]] = ["\"", "\\", "\\u", "\\ud800", "{", "}", "[", "]", ",", ":", "1e999", "-", "null", "tru",
                                     " ", "\"a\":1,", "\u{0}", "é"].map { Array($0.utf8) } + [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80]]

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        let position = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
        switch rng.next() % 5 {
        case 0 where !b.isEmpty: b[position] = UInt8(truncatingIfNeeded: rng.next())
        case 1: b = Array(b[..<position])
        case 2 where !b.isEmpty: b.remove(at: position)
        case 3: b.insert(contentsOf: splices[Int(rng.next() % UInt64(splices.count))], at: position)
        default: b.insert(contentsOf: b[position...].prefix(Int(rng.next() % 12)), at: position)
        }
        return b
    }

    @Test func tapeAndTreeAgreeOnEveryInputAndMutation() throws {
        var tape = JSONTape()
        var rng = SplitMix64(seed: 2026)
        var compared = 0
        var refused = 0
        for seed in try Self.seeds() {
            var inputs = [seed]
            for _ in 0..<12 { inputs.append(Self.mutate(inputs[Int(rng.next() % UInt64(inputs.count))], &rng)) }
            for input in inputs {
                for maxDepth in [32, 3] {
                    let expected = Self.viaTree(input, maxDepth: maxDepth)
                    let actual = Self.viaTape(input, maxDepth: maxDepth, tape: &tape)
                    #expect(actual == expected, "input: \(String(decoding: input.prefix(200), as: UTF8.self))")
                    compared += 1
                    if case .error = expected { refused += 1 }
                }
            }
        }
        // The mix must exercise both sides: most mutations break the text, many do not.
        #expect(compared > 10_000)
        #expect(refused > compared / 5 && refused < compared * 4 / 5)
    }

    @Test func theTapeIsReusedWithoutLeftovers() throws {
        var tape = JSONTape()
        let long = Array(#"{"a":[1,2,3,{"b":[4,5,6]}],"c":"d"}"#.utf8)
        let short = Array(#"{"x":true}"#.utf8)
        #expect(Self.viaTape(long, maxDepth: 32, tape: &tape) == Self.viaTree(long, maxDepth: 32))
        #expect(Self.viaTape(short, maxDepth: 32, tape: &tape) == .value(.object(["x": .bool(true)])))
        #expect(tape.entries.count == 3)
    }

    /// The entries' storage is shared between copies of a tape until the next parse, which then
    /// starts an empty one: a copy keeps what it was made with. A refused document leaves nothing
    /// behind for the next.
    @Test func aCopyKeepsItsEntriesWhenTheOriginalParsesAgain() throws {
        var tape = JSONTape()
        let long = Array(#"{"a":[1,2,3,{"b":[4,5,6]}],"c":"d"}"#.utf8)
        let short = Array(#"{"x":true}"#.utf8)
        #expect(Self.viaTape(long, maxDepth: 32, tape: &tape) == Self.viaTree(long, maxDepth: 32))
        let copy = tape
        let longCount = copy.entries.count
        #expect(Self.viaTape(short, maxDepth: 32, tape: &tape) == .value(.object(["x": .bool(true)])))
        #expect(copy.entries.count == longCount && tape.entries.count == 3)
        long.withUnsafeBufferPointer { b in
            #expect(.value(JSONParser.tree(copy, 0, b)) == Self.viaTree(long, maxDepth: 32))
        }
        guard case .error = Self.viaTape(Array(#"{"a":[1,2,{"b":"#.utf8), maxDepth: 32, tape: &tape) else {
            Issue.record("a cut document was accepted")
            return
        }
        #expect(Self.viaTape(short, maxDepth: 32, tape: &tape) == .value(.object(["x": .bool(true)])))
        #expect(tape.entries.count == 3)
    }
}
