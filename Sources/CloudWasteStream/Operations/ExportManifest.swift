import Foundation

/// What an export wrote, as `manifest.json`: files, rows, bytes, SHA-256 of each file as it is on
/// disk, the time range and the key ids. Written last, so a folder without one is unfinished.
public struct ExportManifest: Sendable, Equatable, Encodable {
    public struct File: Sendable, Equatable, Encodable {
        public var table: String
        public var file: String
        public var rows: Int
        public var bytes: Int64
        public var sha256: String
        public var timeColumn: String
        public var keyIds: [String]
        /// Earliest and latest value of the time column among the exported rows (nil: no rows).
        public var minTime: Timestamp?
        public var maxTime: Timestamp?

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(table, forKey: .table)
            try c.encode(file, forKey: .file)
            try c.encode(rows, forKey: .rows)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(timeColumn, forKey: .timeColumn)
            try c.encode(keyIds, forKey: .keyIds)
            try c.encode(minTime?.description, forKey: .minTime)  // null when empty, never absent
            try c.encode(maxTime?.description, forKey: .maxTime)
        }

        enum CodingKeys: String, CodingKey { case table, file, rows, bytes, sha256, timeColumn, keyIds, minTime, maxTime }
    }

    public var createdAt: Timestamp
    public var schema: String
    public var days: Int
    public var format: Exporter.Format
    public var gzip: Bool
    /// The window `[from, to)`; `to` is the instant of the snapshot.
    public var from: Timestamp
    public var to: Timestamp
    public var files: [File]

    /// Distinct key ids over every file: more than one means the data straddles a key rotation.
    public var keyIds: [String] { Array(Set(files.flatMap(\.keyIds))).sorted() }
    public var totalRows: Int { files.reduce(0) { $0 + $1.rows } }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(1, forKey: .manifestVersion)
        try c.encode(createdAt.description, forKey: .createdAt)
        try c.encode(schema, forKey: .schema)
        try c.encode(days, forKey: .days)
        try c.encode(format.rawValue, forKey: .format)
        try c.encode(gzip, forKey: .gzip)
        try c.encode(["from": from.description, "to": to.description], forKey: .timeRange)
        try c.encode(keyIds, forKey: .keyIds)
        try c.encode(totalRows, forKey: .totalRows)
        try c.encode(files, forKey: .files)
    }

    enum CodingKeys: String, CodingKey { case manifestVersion, createdAt, schema, days, format, gzip, timeRange, keyIds, totalRows, files }

    /// The content of `manifest.json`.
    public var jsonBytes: [UInt8] { JSONCoding.bytes(self) }
}
