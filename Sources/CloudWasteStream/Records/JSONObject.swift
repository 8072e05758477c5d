/// A JSON object's fields in document order. Records have a few dozen fields at most, so a
/// linear search by name beats hashing every name into a dictionary (the decoder's hot path);
/// duplicate names are rejected by the parser, so a name appears at most once.
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)
    public private(set) var keys: [String]
    public private(set) var values: [JSONValue]

    init(keys: [String], values: [JSONValue]) {
        self.keys = keys
        self.values = values
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        keys = elements.map(\.0)
        values = elements.map(\.1)
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(name: String) -> JSONValue? {
        guard let i = Self.index(of: name, in: keys) else { return nil }
        return values[i]
    }

    /// Names of different lengths are told apart by their lengths alone (O(1) for native
    /// strings), so only a name of the same length is compared byte by byte.
    static func index(of name: String, in keys: [String]) -> Int? {
        let length = name.utf8.count
        for i in keys.indices where keys[i].utf8.count == length && keys[i] == name { return i }
        return nil
    }

    public struct Iterator: IteratorProtocol {
        let object: JSONObject
        var index = 0
        public mutating func next() -> Element? {
            guard index < object.keys.count else { return nil }
            defer { index += 1 }
            return (object.keys[index], object.values[index])
        }
    }

    public func makeIterator() -> Iterator { Iterator(object: self) }

    /// The fields as a dictionary (order-free comparisons, off the hot path).
    public var dictionary: [String: JSONValue] { Dictionary(zip(keys, values), uniquingKeysWith: { a, _ in a }) }

    public func compactMapValues<T>(_ transform: (JSONValue) throws -> T?) rethrows -> [String: T] {
        try dictionary.compactMapValues(transform)
    }

    /// Field order does not matter for equality (JSON objects are unordered).
    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.count == b.count && a.dictionary == b.dictionary }
}
