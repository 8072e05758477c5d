/// A scan record's tags as far as anything reads them: the keys as SPEC §3 keeps them, and one
/// value, that of the tag naming the resource's environment (SPEC §3 keeps nothing else of a
/// value). The other values are type-checked where they stand in the message and never copied.
public struct ScanTags: Equatable, Sendable {
    /// A tag whose key names an environment, and its value (nil: JSON null).
    public struct EnvironmentTag: Equatable, Sendable {
        public var key: String
        public var value: String?
    }

    /// Lower-cased, de-duplicated and sorted as they are decoded.
    public var keys: TagKeys
    /// The tag keyed `env`, `environment` or `stage` (in any case); when several are, the one whose
    /// key (as sent) sorts first, so the choice does not depend on the members' order.
    public private(set) var environment: EnvironmentTag?

    static let environmentKeys = ["env", "environment", "stage"]

    public init(keys: TagKeys = TagKeys()) { self.keys = keys }

    /// Tags from key/value pairs (tests and tools).
    public init(_ pairs: [(key: String, value: String?)]) {
        self.init(keys: TagKeys(normalizing: pairs.map(\.key)))
        for (key, value) in pairs where Self.namesEnvironment(key) { considerForEnvironment(key: key) { value } }
    }

    /// Offers a key that names an environment as the environment tag; `value` is asked for only
    /// when this tag becomes it.
    mutating func considerForEnvironment(key: String, value: () -> String?) {
        guard environment.map({ key < $0.key }) ?? true else { return }
        environment = EnvironmentTag(key: key, value: value())
    }

    /// The keys, moved out (the row takes them without a copy).
    mutating func takeKeys() -> TagKeys {
        var taken = TagKeys()
        swap(&taken, &keys)
        return taken
    }

    static func namesEnvironment(_ key: String) -> Bool {
        let length = key.utf8.count
        guard length == 3 || length == 5 || length == 11 else { return false }
        return key.utf8.withContiguousStorageIfAvailable(namesEnvironment) ?? environmentKeys.contains(key.lowercased())
    }

    /// Compared, not hashed: most keys are ruled out by their length alone (no character outside
    /// ASCII lower-cases to one of these letters, so a match has the word's length in bytes), the
    /// others by their bytes, ASCII letters folded to lower case (no String is made).
    static func namesEnvironment(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let length = utf8.count
        guard length == 3 || length == 5 || length == 11 else { return false }
        let word: StaticString = length == 3 ? "env" : length == 5 ? "stage" : "environment"
        for i in 0..<length where asciiLowercased(utf8[i]) != word.utf8Start[i] { return false }
        return true
    }
}
