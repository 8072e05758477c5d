/// One strict pass over a JSON document that leaves no tree behind: every value in document order
/// as a fixed-size entry (kind, where its bytes are, how far to skip), in storage that the owner
/// reuses from record to record. Strings stay where they are in the message's buffer until a
/// field is read; numbers are converted once. This is the decoder's hot path: a record costs no
/// `String` per field, no dictionary, no enum boxes (`JSONParser` reads a tape back as a tree,
/// for configuration files and tests).
///
/// Every rule of the tree parser it replaced holds (that parser is kept in the tests as
/// `ReferenceJSONParser`, and a differential test holds the two together), with the same errors
/// in the same order: UTF-8 validity, escapes, depth, duplicate names (compared after unescaping,
/// byte for byte), numbers that overflow, trailing bytes. Layout: a container's entry is followed
/// by its members (an object's as name, value pairs), and its `next` is the index just past its
/// last descendant. The entries only make sense together with the bytes they were parsed from.
public struct JSONTape {
    enum Kind: UInt8 { case null, `false`, `true`, number, string, array, object }

    struct Entry {
        var kind: Kind
        /// A string with at least one backslash escape (read through `unescaped`).
        var escaped = false
        /// Strings: the first byte after the opening quote; numbers: the first byte.
        var start: Int32 = 0
        /// Strings: the closing quote; numbers: one past the last byte.
        var end: Int32 = 0
        /// The index of the entry after this value and all that it contains.
        var next: Int32 = 0
        /// Containers: members (object) or elements (array).
        var count: Int32 = 0
        /// Numbers: the value. Strings: a signature (length, first bytes and a hash of the last
        /// eight, as a bit pattern) that tells most names apart in the duplicate check without
        /// comparing bytes.
        var number: Double = 0
    }

    /// Shared only between copies of a tape: `parse` starts an empty storage when it is shared, so
    /// a copy keeps the entries it was made with.
    private(set) var entries = EntryStorage(capacity: 64)
    var maxDepth: Int
    /// Short values repeated across records, shared instead of allocated per record.
    let strings = StringInterner()
    /// Where the next root field lookup starts (see `rootMember`).
    let lookup = LookupHint()

    /// Mutable across reads of one record (the reader is a value): the last root name found.
    final class LookupHint {
        var next = 1
    }

    public init(maxDepth: Int = 32) {
        self.maxDepth = maxDepth
    }

    /// Parses `bytes` into the tape, replacing what it held; the root is entry 0.
    public mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) {
        if !isKnownUniquelyReferenced(&entries) { entries = EntryStorage(capacity: entries.capacity) }
        entries.removeAll()
        var pass = Pass(bytes: bytes, maxDepth: maxDepth, entries: entries)
        pass.skipWhitespace()
        try pass.parseValue(depth: 0)
        pass.skipWhitespace()
        if pass.index != bytes.count { throw .malformed(offset: pass.index) }
    }

    subscript(i: Int) -> Entry { entries[i] }

    // MARK: Reading entries

    /// The entry index of the value of `object`'s member named `name`, or nil. Names are literals
    /// (`StaticString`): their bytes are read where they are, with no reference counting.
    func member(_ name: StaticString, of object: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = ShortBytes.of(name)
        var key = object + 1
        for _ in 0..<entries[object].count {
            if keyEquals(key, n, in: bytes) { return key + 1 }
            key = Int(entries[key + 1].next)
        }
        return nil
    }

    /// The same for the root object, searching from just after the member found last: records
    /// mostly list their fields in the order the decoder asks for them, so this usually finds a
    /// field at the first name it compares. `hint` is the name entry to start from.
    func rootMember(_ name: StaticString, in bytes: UnsafeBufferPointer<UInt8>, hint: inout Int) -> Int? {
        let count = Int(entries[0].count)
        guard count > 0 else { return nil }
        let n = ShortBytes.of(name)
        var key = hint < entries.count && hint > 0 ? hint : 1
        for _ in 0..<count {
            if keyEquals(key, n, in: bytes) {
                let next = Int(entries[key + 1].next)
                hint = next < entries.count ? next : 1
                return key + 1
            }
            key = Int(entries[key + 1].next)
            if key >= entries.count { key = 1 }
        }
        return nil
    }

    /// The members of `object` as (name entry, value entry), in document order.
    func members(of object: Int) -> MemberSequence { MemberSequence(tape: self, object: object) }

    /// The elements of `array`, as entry indices in document order.
    func elements(of array: Int) -> ElementSequence { ElementSequence(tape: self, array: array) }

    /// Whether string entry `i` holds exactly `name` (after unescaping).
    @inline(__always)
    func keyEquals(_ i: Int, _ name: UnsafeBufferPointer<UInt8>, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let e = entries[i]
        if e.escaped { return unescaped(i, in: bytes).elementsEqual(name) }
        return ShortBytes.equal(UnsafeBufferPointer(rebasing: bytes[Int(e.start)..<Int(e.end)]), name)
    }

    /// A string entry's raw bytes (between the quotes), when it has no escapes.
    func rawBytes(_ i: Int, in bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        let e = entries[i]
        guard !e.escaped else { return nil }
        return UnsafeBufferPointer(rebasing: bytes[Int(e.start)..<Int(e.end)])
    }

    /// A string entry's value as a String (validated UTF-8 already).
    func string(_ i: Int, in bytes: UnsafeBufferPointer<UInt8>) -> String {
        if let raw = rawBytes(i, in: bytes) { return String(decoding: raw, as: UTF8.self) }
        return String(decoding: unescaped(i, in: bytes), as: UTF8.self)
    }

    /// A string entry's bytes with its escapes resolved (the rare path: it allocates).
    func unescaped(_ i: Int, in bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        let e = entries[i]
        var out: [UInt8] = []
        out.reserveCapacity(Int(e.end - e.start))
        _ = JSONEscapes.unescape(UnsafeBufferPointer(rebasing: bytes[Int(e.start)..<Int(e.end)]), into: &out)
        return out
    }

    struct MemberSequence: Sequence {
        let tape: JSONTape
        let object: Int
        struct Iterator: IteratorProtocol {
            let tape: JSONTape
            var key: Int
            var left: Int32
            mutating func next() -> (name: Int, value: Int)? {
                guard left > 0 else { return nil }
                left -= 1
                defer { key = Int(tape.entries[key + 1].next) }
                return (key, key + 1)
            }
        }
        func makeIterator() -> Iterator { Iterator(tape: tape, key: object + 1, left: tape.entries[object].count) }
    }

    struct ElementSequence: Sequence {
        let tape: JSONTape
        let array: Int
        struct Iterator: IteratorProtocol {
            let tape: JSONTape
            var element: Int
            var left: Int32
            mutating func next() -> Int? {
                guard left > 0 else { return nil }
                left -= 1
                defer { element = Int(tape.entries[element].next) }
                return element
            }
        }
        func makeIterator() -> Iterator { Iterator(tape: tape, element: array + 1, left: tape.entries[array].count) }
    }
}

extension JSONTape {
    /// The entries' memory, kept from record to record and grown by doubling. Written through a
    /// pointer: an Array checked its uniqueness on every append and every patch of a container's
    /// entry, about 47 runtime calls a record. Bounds are checked on every access all the same.
    /// Only this file's parse writes it.
    final class EntryStorage {
        private var base: UnsafeMutablePointer<Entry>
        private(set) var capacity: Int
        private(set) var count = 0

        init(capacity: Int) {
            assert(_isPOD(Entry.self), "entries are freed and overwritten without deinitializing")
            self.capacity = max(capacity, 16)
            base = .allocate(capacity: self.capacity)
        }

        deinit { base.deallocate() }  // entries are plain values: nothing to deinitialize

        fileprivate func removeAll() { count = 0 }

        @inline(__always)
        fileprivate func append(_ entry: Entry) {
            if count == capacity { grow() }
            (base + count).initialize(to: entry)
            count += 1
        }

        @inline(__always)
        subscript(i: Int) -> Entry {
            precondition(i >= 0 && i < count, "tape entry out of range")
            return base[i]
        }

        /// Completes a container's entry once its members are parsed: how many, and the index
        /// just past the last of them.
        @inline(__always)
        fileprivate func close(_ i: Int, members: Int32) {
            precondition(i >= 0 && i < count, "tape entry out of range")
            base[i].count = members
            base[i].next = Int32(count)
        }

        private func grow() {
            let bigger = UnsafeMutablePointer<Entry>.allocate(capacity: capacity * 2)
            bigger.moveInitialize(from: base, count: count)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
    }
}

/// A set of names that can say "certainly not there" (a Bloom filter with one hash).
private struct NameFilter {
    private var bits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var escaped = false

    /// Adds the name and says whether it may have been there already.
    mutating func mayContain(_ name: JSONTape.Entry) -> Bool {
        if name.escaped { escaped = true }
        let bit = Int((name.number.bitPattern &* 0x9E37_79B9_7F4A_7C15) >> 56)
        let mask = UInt64(1) << UInt64(bit & 63)
        let had: Bool
        switch bit >> 6 {
        case 0: had = bits.0 & mask != 0; bits.0 |= mask
        case 1: had = bits.1 & mask != 0; bits.1 |= mask
        case 2: had = bits.2 & mask != 0; bits.2 |= mask
        default: had = bits.3 & mask != 0; bits.3 |= mask
        }
        return had || escaped
    }
}

/// The single pass: the same grammar and checks as `JSONParser`'s cursor, appending entries.
private struct Pass {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    let entries: JSONTape.EntryStorage
    var index = 0
    /// The root object's member whose value is being parsed (its name entry), for error reports.
    var topLevelKey: Int?

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, entries: JSONTape.EntryStorage) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.entries = entries
    }

    @inline(__always) var atEnd: Bool { index >= bytes.count }
    @inline(__always) var current: UInt8 { bytes[index] }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) {
        guard !atEnd else { throw .malformed(offset: index) }
        switch current {
        case UInt8(ascii: "{"): try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): try parseString()
        case UInt8(ascii: "t"): try literal("true", .true)
        case UInt8(ascii: "f"): try literal("false", .false)
        case UInt8(ascii: "n"): try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber()
        default: throw .malformed(offset: index)
        }
    }

    mutating func literal(_ text: StaticString, _ kind: JSONTape.Kind) throws(JSONParseError) {
        let count = text.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .malformed(offset: index) }
        let expected = UnsafeBufferPointer(start: text.utf8Start, count: count)
        for i in 0..<count where bytes[index + i] != expected[i] { throw .malformed(offset: index + i) }
        index += count
        entries.append(JSONTape.Entry(kind: kind, next: Int32(entries.count + 1)))
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1
        let me = entries.count
        entries.append(JSONTape.Entry(kind: .object))
        var count: Int32 = 0
        /// Unescaped names seen, once the object is too large for a linear search.
        var seen: Set<[UInt8]>?
        /// A 256-bit filter of the names' signatures: a name whose bit is clear is new, without a
        /// search. Escaped names bypass it (their signature is not of the unescaped text).
        var filter = NameFilter()
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "}") {
            index += 1
            entries.close(me, members: 0)
            return
        }
        while true {
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: "\"") else { throw .malformed(offset: index) }
            let key = entries.count
            try parseString()
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: ":") else { throw .malformed(offset: index) }
            index += 1
            skipWhitespace()
            if depth == 1 { topLevelKey = key }
            try parseValue(depth: depth)
            if filter.mayContain(entries[key]), isDuplicate(key, object: me, count: count, seen: &seen) {
                let name = text(key)
                throw .duplicateKey(name, topLevelKey: depth == 1 ? nil : topLevelKey.map(text))
            }
            count += 1
            skipWhitespace()
            guard !atEnd else { throw .malformed(offset: index) }
            if current == UInt8(ascii: ",") { index += 1; continue }
            if current == UInt8(ascii: "}") {
                index += 1
                entries.close(me, members: count)
                return
            }
            throw .malformed(offset: index)
        }
    }

    /// Whether the name at `key` is already among the first `count` members of `object`: a linear
    /// search for small objects, a set once an object grows past 32 members (so that a hostile
    /// one cannot make this quadratic).
    mutating func isDuplicate(_ key: Int, object: Int, count: Int32, seen: inout Set<[UInt8]>?) -> Bool {
        if seen != nil { return !seen!.insert(unescapedName(key)).inserted }
        var earlier = object + 1
        let name = entries[key]
        for _ in 0..<count {
            let e = entries[earlier]
            if e.escaped || name.escaped {
                if unescapedName(earlier) == unescapedName(key) { return true }
            } else if e.number.bitPattern == name.number.bitPattern, e.end - e.start == name.end - name.start,
                      ShortBytes.equal(bytes.baseAddress! + Int(e.start), bytes.baseAddress! + Int(name.start), count: Int(name.end - name.start)) {
                return true
            }
            earlier = Int(entries[earlier + 1].next)
        }
        if count >= 32 {
            var names = Set<[UInt8]>()
            earlier = object + 1
            for _ in 0..<count {
                names.insert(unescapedName(earlier))
                earlier = Int(entries[earlier + 1].next)
            }
            names.insert(unescapedName(key))
            seen = names
        }
        return false
    }

    func unescapedName(_ i: Int) -> [UInt8] {
        let e = entries[i]
        let raw = UnsafeBufferPointer(rebasing: bytes[Int(e.start)..<Int(e.end)])
        guard e.escaped else { return Array(raw) }
        var out: [UInt8] = []
        _ = JSONEscapes.unescape(raw, into: &out)
        return out
    }

    func text(_ i: Int) -> String { String(decoding: unescapedName(i), as: UTF8.self) }

    mutating func parseArray(depth: Int) throws(JSONParseError) {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1
        let me = entries.count
        entries.append(JSONTape.Entry(kind: .array))
        var count: Int32 = 0
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "]") {
            index += 1
            entries.close(me, members: 0)
            return
        }
        while true {
            skipWhitespace()
            try parseValue(depth: depth)
            count += 1
            skipWhitespace()
            guard !atEnd else { throw .malformed(offset: index) }
            if current == UInt8(ascii: ",") { index += 1; continue }
            if current == UInt8(ascii: "]") {
                index += 1
                entries.close(me, members: count)
                return
            }
            throw .malformed(offset: index)
        }
    }

    mutating func parseString() throws(JSONParseError) {
        index += 1  // opening quote
        let start = index
        var escaped = false
        var ascii = true
        let base = bytes.baseAddress!
        let count = bytes.count
        while true {
            // Eight bytes at a time up to the first one that needs a look: a quote, a backslash,
            // a control character or a non-ASCII byte (the lowest flagged byte is exact).
            while index &+ 8 <= count {
                let attention = Self.attention(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
                if attention != 0 {
                    index &+= attention.trailingZeroBitCount >> 3
                    break
                }
                index &+= 8
            }
            guard index < count else { throw .malformed(offset: index) }
            let b = base[index]
            if b == UInt8(ascii: "\"") { break }
            if b < 0x20 { throw .malformed(offset: index) }
            if b >= 0x80 { ascii = false }
            if b == UInt8(ascii: "\\") {
                escaped = true
                index += 1
                try skipEscape()
                continue
            }
            index += 1
        }
        let end = index
        index += 1  // closing quote
        if !ascii {
            // Escapes produce whole scalars, so the decoded string is valid UTF-8 exactly when
            // every raw run between escapes is.
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
            let valid = escaped ? JSONEscapes.rawRunsAreValidUTF8(raw) : UTF8Validation.isValid(raw)
            if !valid { throw .invalidUTF8 }
        }
        entries.append(JSONTape.Entry(kind: .string, escaped: escaped, start: Int32(start), end: Int32(end),
                                      next: Int32(entries.count + 1), number: Double(bitPattern: signature(start, end))))
    }

    /// A mask with the high bit set in the first of the eight bytes (little-endian) that is a
    /// quote, a backslash, below 0x20 or above 0x7F, zero when there is none ("has zero byte" and
    /// "has less than" from Bit Twiddling Hacks: bits above the first flagged byte may be wrong,
    /// the lowest one never is).
    @inline(__always)
    static func attention(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let zeroInQuote = (quote &- ones) & ~quote
        let zeroInBackslash = (backslash &- ones) & ~backslash
        let control = (w &- ones &* 0x20) & ~w
        return ((zeroInQuote | zeroInBackslash | control) | w) & highs
    }

    /// A string's length, first bytes and last bytes in one word, so that names are told apart
    /// without a comparison (duplicate checks) and spread over the name filter's bits: names that
    /// share a prefix and a length (`resource_type`, `resource_name`) differ at their end. Equal
    /// signatures are compared in full.
    @inline(__always)
    func signature(_ start: Int, _ end: Int) -> UInt64 {
        let length = end - start
        var prefix: UInt64 = 0
        if length >= 7 {  // at 7, the closing quote follows: eight bytes are there to load
            let first = UnsafeRawPointer(bytes.baseAddress! + start)
            prefix = first.loadUnaligned(as: UInt64.self) & 0x00FF_FFFF_FFFF_FFFF
            if length >= 8 { prefix ^= (first.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self) &* 0x9E37_79B9_7F4A_7C15) >> 8 }
        } else {
            for i in 0..<length { prefix |= UInt64(bytes[start + i]) << (8 * UInt64(i)) }
        }
        return prefix | UInt64(truncatingIfNeeded: length) << 56
    }

    /// Checks the escape after a backslash (index is at the character after it) and moves past it.
    mutating func skipEscape() throws(JSONParseError) {
        guard index < bytes.count else { throw .malformed(offset: index) }
        let e = bytes[index]
        index += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            let scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw .malformed(offset: index)
                }
                index += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw .malformed(offset: index) }
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw .malformed(offset: index)
            }
        default:
            throw .malformed(offset: index - 1)
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .malformed(offset: index) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = JSONEscapes.hexDigit(bytes[index]) else { throw .malformed(offset: index) }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    mutating func parseNumber() throws(JSONParseError) {
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
        let literal = UnsafeBufferPointer(rebasing: bytes[start..<index])
        let value: Double
        if let exact = JSONNumbers.fastDecimal(literal) {
            value = exact
        } else {
            guard let parsed = Double(String(decoding: literal, as: UTF8.self)) else { throw .malformed(offset: start) }
            if !parsed.isFinite { throw .numberOutOfRange(topLevelKey: topLevelKey.map(text(_:))) }
            value = parsed
        }
        entries.append(JSONTape.Entry(kind: .number, start: Int32(start), end: Int32(index), next: Int32(entries.count + 1), number: value))
    }
}
