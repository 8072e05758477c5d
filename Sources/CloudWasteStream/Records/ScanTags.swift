/// A scan record's tags as far as anything reads them: every key as sent, and one value, that of
/// the tag naming the resource's environment (SPEC §3 keeps nothing else of a value). The other
/// values are type-checked where they stand in the message and never copied.
public struct ScanTags: Equatable, Sendable {
    /// A tag whose key names an environment, and its value (nil: JSON null).
    public struct EnvironmentTag: Equatable, Sendable {
        public var key: String
        public var value: String?
    }

    /// The keys, exactly as sent, in the record's order.
    public var keys: [String] = []
    /// The tag keyed `env`, `environment` or `stage` (in any case); when several are, the one whose
    /// key sorts first, so the choice does not depend on the members' order.
    public private(set) var environment: EnvironmentTag?

    static let environmentKeys = ["env", "environment", "stage"]

    public init() {}

    /// Tags from key/value pairs (tests and tools).
    public init(_ pairs: [(key: String, value: String?)]) {
        for (key, value) in pairs { add(key: key) { value } }
    }

    /// Appends a key; `value` is asked for only when this tag becomes the environment tag.
    mutating func add(key: String, value: () -> String?) {
        keys.append(key)
        guard Self.namesEnvironment(key), environment.map({ key < $0.key }) ?? true else { return }
        environment = EnvironmentTag(key: key, value: value())
    }

    /// The keys, moved out (so that the anonymizer can rework them in place, without a copy).
    mutating func takeKeys() -> [String] {
        var taken: [String] = []
        swap(&taken, &keys)
        return taken
    }

    /// Compared, not hashed: most keys are ruled out by their length alone (no character outside
    /// ASCII lower-cases to one of these letters, so a match has the word's length in bytes), the
    /// others by their bytes in place, ASCII letters folded to lower case (no String is made).
    static func namesEnvironment(_ key: String) -> Bool {
        let length = key.utf8.count
        guard length == 3 || length == 5 || length == 11 else { return false }
        let folded: Bool? = key.utf8.withContiguousStorageIfAvailable { utf8 in
            if utf8.contains(where: { $0 >= 0x80 }) { return nil }
            let word: StaticString = length == 3 ? "env" : length == 5 ? "stage" : "environment"
            for i in 0..<length where asciiLowercased(utf8[i]) != word.utf8Start[i] { return false }
            return true
        } ?? nil
        return folded ?? environmentKeys.contains(key.lowercased())
    }
}
