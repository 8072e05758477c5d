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
/// garbage, bounded depth, duplicate object keys rejected, numbers that overflow rejected. The
/// grammar is `JSONTape`'s (one pass, the rules in one place); this reads the tape back as a
/// tree, for configuration files and tests. Records are decoded from the tape directly.
public struct JSONParser {
    public var maxDepth: Int

    public init(maxDepth: Int = 32) { self.maxDepth = maxDepth }

    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var tape = JSONTape(maxDepth: maxDepth)
        return try bytes.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            try tape.parse(buffer)
            return Self.tree(tape, 0, buffer)
        }
    }

    static func tree(_ tape: JSONTape, _ i: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> JSONValue {
        switch tape[i].kind {
        case .null: return .null
        case .true: return .bool(true)
        case .false: return .bool(false)
        case .number: return .number(tape[i].number)
        case .string: return .string(tape.string(i, in: bytes))
        case .array: return .array(tape.elements(of: i).map { tree(tape, $0, bytes) })
        case .object:
            var keys: [String] = []
            var values: [JSONValue] = []
            for (name, value) in tape.members(of: i) {
                keys.append(tape.string(name, in: bytes))
                values.append(tree(tape, value, bytes))
            }
            return .object(JSONObject(keys: keys, values: values))
        }
    }
}
