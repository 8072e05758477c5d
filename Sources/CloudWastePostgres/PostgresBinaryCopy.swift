/// The column types that the project writes with binary COPY, and their SQL names.
public enum PostgresColumnType: String, Sendable {
    case text
    case float8 = "double precision"
    case int2 = "smallint"
    case int4 = "int"
    case int8 = "bigint"
    case bool = "boolean"
    case date
    case timestamptz
    case jsonb
    case textArray = "text[]"
    case bytea
}

/// Rows in PostgreSQL's binary COPY format (`COPY … FROM STDIN (FORMAT binary)`), appended
/// straight into one byte buffer. Binary COPY saves the server the text parsing of every value
/// (numbers, timestamps, arrays) and saves us the formatting; values must match the column types
/// exactly, which the table descriptions guarantee. Tuples only: `framed` adds header and trailer.
public struct PostgresBinaryCopyEncoder: Sendable {
    /// The bytes, appended through a raw pointer: a field is a few stores, not an Array append
    /// (whose generic path was most of the cost of encoding a row). Copy on write.
    private var storage: ByteStorage

    public init(capacity: Int = 0) { storage = ByteStorage(capacity: max(capacity, 64)) }

    /// The encoded bytes, copied (tests, small buffers); `withUnsafeBytes` reads them in place.
    public var bytes: [UInt8] { storage.withBytes { Array($0) } }

    /// Calls `body` with the encoded bytes, valid during the call.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try storage.withBytes(body) }

    /// The 19-byte signature, flags and header-extension length that open every binary COPY stream.
    public static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]
    /// The field count -1 that ends it.
    public static let trailer: [UInt8] = [0xFF, 0xFF]

    /// A complete COPY stream of `tuples`.
    public static func framed(_ tuples: [UInt8]) -> [UInt8] {
        var out = header
        out.reserveCapacity(header.count + tuples.count + 2)
        out.append(contentsOf: tuples)
        out.append(contentsOf: trailer)
        return out
    }

    public var count: Int { storage.count }

    public mutating func removeAll(keepingCapacity: Bool = true) {
        if keepingCapacity, isKnownUniquelyReferenced(&storage) { storage.count = 0 } else { storage = ByteStorage(capacity: 64) }
    }

    /// Room for `n` more bytes in storage this encoder alone holds; returns where they go.
    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if !isKnownUniquelyReferenced(&storage) || storage.count + n > storage.capacity {
            storage = storage.copy(minimumCapacity: storage.count + n)
        }
        return storage.pointer + storage.count
    }

    @inline(__always)
    private mutating func append(_ raw: UnsafeRawBufferPointer) {
        guard raw.count > 0 else { return }
        reserve(raw.count).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        storage.count += raw.count
    }

    /// Starts a tuple of `fields` values.
    public mutating func beginRow(fields: Int) { appendBigEndian(UInt16(fields)) }

    public mutating func null() { appendBigEndian(UInt32(bitPattern: -1)) }

    public mutating func text(_ s: String?) {
        guard let s else { return null() }
        text(s)
    }

    /// A string's bytes read where they are: a native string is borrowed, not copied, so a row's
    /// fields cost no reference counting to encode.
    public mutating func text(_ s: borrowing String) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { lengthPrefixed(UnsafeRawBufferPointer($0)) }
        if done == nil {
            var copy = copy s
            copy.withUTF8 { lengthPrefixed(UnsafeRawBufferPointer($0)) }
        }
    }

    /// Raw bytes as the value of a `text` or `bytea` column.
    public mutating func raw(_ b: [UInt8]?) {
        guard let b else { return null() }
        b.withUnsafeBytes { lengthPrefixed($0) }
    }

    /// A value of `byteCount` bytes that `write` puts in place (no intermediate buffer), for
    /// fixed-size values such as hex text of a known length or a bytea.
    public mutating func value(byteCount: Int, _ write: (UnsafeMutableRawBufferPointer) -> Void) {
        let p = reserve(4 + byteCount)
        p.storeBytes(of: UInt32(byteCount).bigEndian, as: UInt32.self)
        write(UnsafeMutableRawBufferPointer(start: p + 4, count: byteCount))
        storage.count += 4 + byteCount
    }

    public mutating func float8(_ v: Double?) {
        guard let v else { return null() }
        fixedField(v.bitPattern)
    }

    public mutating func int2(_ v: Int?) {
        guard let v else { return null() }
        fixedField(UInt16(bitPattern: Int16(truncatingIfNeeded: v)))
    }

    public mutating func int4(_ v: Int?) {
        guard let v else { return null() }
        fixedField(UInt32(bitPattern: Int32(truncatingIfNeeded: v)))
    }

    public mutating func int8(_ v: Int64?) {
        guard let v else { return null() }
        fixedField(UInt64(bitPattern: v))
    }

    public mutating func bool(_ v: Bool?) {
        guard let v else { return null() }
        fixedField(UInt8(v ? 1 : 0))
    }

    /// Microseconds since 1970-01-01T00:00:00Z (PostgreSQL counts from 2000-01-01).
    public mutating func timestamptz(unixMicros: Int64?) {
        guard let v = unixMicros else { return null() }
        fixedField(UInt64(bitPattern: v - Self.postgresEpochOffsetMicros))
    }

    /// Days since 1970-01-01 (PostgreSQL counts from 2000-01-01).
    public mutating func date(unixDays: Int?) {
        guard let v = unixDays else { return null() }
        fixedField(UInt32(bitPattern: Int32(v - 10_957)))
    }

    /// jsonb: a version byte (1) and the JSON text.
    public mutating func jsonb(_ json: String?) {
        guard var json else { return null() }
        json.withUTF8 { jsonb(text: UnsafeRawBufferPointer($0)) }
    }

    /// jsonb of JSON text given as bytes (e.g. written into a stack buffer), after one `reserve`.
    public mutating func jsonb(text: UnsafeRawBufferPointer) {
        value(byteCount: 1 + text.count) { value in
            value.storeBytes(of: UInt8(1), as: UInt8.self)
            if text.count > 0 { (value.baseAddress! + 1).copyMemory(from: text.baseAddress!, byteCount: text.count) }
        }
    }

    private mutating func patchLength(at lengthAt: Int) {
        (storage.pointer + lengthAt).storeBytes(of: UInt32(count - lengthAt - 4).bigEndian, as: UInt32.self)
    }

    /// A one-dimensional text[] without NULL elements.
    public mutating func textArray(_ values: [String]?) {
        guard let values else { return null() }
        let lengthAt = count
        appendBigEndian(UInt32(0))  // patched below
        let header = Self.writeTextArrayHeader(count: values.count, to: reserve(20))
        storage.count += header
        for v in values { text(v) }
        patchLength(at: lengthAt)
    }

    /// A one-dimensional text[] of `count` elements already laid out as this format writes them
    /// (each a 4-byte big-endian length, then its bytes), copied in one piece after one `reserve`.
    public mutating func textArray(count: Int, elements: UnsafeRawBufferPointer) {
        value(byteCount: (count == 0 ? 12 : 20) + elements.count) { value in
            let headerBytes = Self.writeTextArrayHeader(count: count, to: value.baseAddress!)
            if elements.count > 0 { (value.baseAddress! + headerBytes).copyMemory(from: elements.baseAddress!, byteCount: elements.count) }
        }
    }

    /// ndim, the NULL flag and the element type (text); for a non-empty array, its size and lower
    /// bound. Returns the bytes written (12 or 20).
    private static func writeTextArrayHeader(count: Int, to p: UnsafeMutableRawPointer) -> Int {
        p.storeBytes(of: UInt32(count == 0 ? 0 : 1).bigEndian, as: UInt32.self)
        p.storeBytes(of: UInt32(0).bigEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: UInt32(25).bigEndian, toByteOffset: 8, as: UInt32.self)
        guard count > 0 else { return 12 }
        p.storeBytes(of: UInt32(count).bigEndian, toByteOffset: 12, as: UInt32.self)
        p.storeBytes(of: UInt32(1).bigEndian, toByteOffset: 16, as: UInt32.self)
        return 20
    }

    /// Appends bytes as they are: tuples encoded elsewhere (a batch copies its rows in).
    public mutating func appendBytes(_ raw: UnsafeRawBufferPointer) { append(raw) }


    static let postgresEpochOffsetMicros: Int64 = 946_684_800_000_000

    // A field is its length and its value, written after one `reserve`: one uniqueness check of
    // the storage (a call into the Swift runtime) per field instead of one per part.

    @inline(__always)
    private mutating func fixedField<T: FixedWidthInteger>(_ v: T) {
        let p = reserve(4 + MemoryLayout<T>.size)
        p.storeBytes(of: UInt32(MemoryLayout<T>.size).bigEndian, as: UInt32.self)
        (p + 4).storeBytes(of: v.bigEndian, as: T.self)
        storage.count += 4 + MemoryLayout<T>.size
    }

    @inline(__always)
    private mutating func lengthPrefixed(_ bytes: UnsafeRawBufferPointer) {
        let p = reserve(4 + bytes.count)
        p.storeBytes(of: UInt32(bytes.count).bigEndian, as: UInt32.self)
        if bytes.count > 0 { (p + 4).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        storage.count += 4 + bytes.count
    }

    @inline(__always)
    private mutating func appendBigEndian<T: FixedWidthInteger>(_ v: T) {
        reserve(MemoryLayout<T>.size).storeBytes(of: v.bigEndian, as: T.self)
        storage.count += MemoryLayout<T>.size
    }
}

/// The encoder's growable bytes. `@unchecked Sendable`: raw memory, written only through an
/// encoder that holds the only reference (copy on write), read-only once shared.
final class ByteStorage: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 8)
    }

    deinit { pointer.deallocate() }

    /// A copy with room for at least `minimumCapacity` bytes (doubling, so appends stay amortized).
    func copy(minimumCapacity: Int) -> ByteStorage {
        let out = ByteStorage(capacity: max(minimumCapacity, capacity * 2))
        out.pointer.copyMemory(from: pointer, byteCount: count)
        out.count = count
        return out
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
