import CloudWastePostgres

/// The rows of the records one preparer prepared, already binary COPY tuples: a record is
/// encoded on the thread that decoded and anonymized it, right after, so the record itself (its
/// strings, arrays and pseudonyms) never leaves that thread, its arrays go back to that thread's
/// `RecycledArrays` for the next record, and the consumer thread only copies finished rows into
/// their batch (`BatchBuilder`). Emptied and refilled group after group, so encoding costs no
/// allocation per record. Owned by one thread at a time: a preparation worker fills it, then the
/// consumer thread reads it, then the worker has it back.
public struct PreparedRows: Sendable {
    /// One row: its primary key (a batch keeps the last row per key), where its tuple is, and
    /// its detection's index in `detections` (-1: none).
    struct Row: Sendable {
        var key: RowKey
        var start: Int
        var length: Int
        var detection: Int32 = -1
    }

    private var encoder = PostgresBinaryCopyEncoder()
    private(set) var rows: [Row] = []
    /// What the detection rows contribute to the window state, kept beside them so that they are
    /// copied once, into the batch (not carried in each `PreparedRecord`).
    private var detections: [WindowDetection] = []

    public init() {}

    /// Empties it, keeping its capacity.
    mutating func removeAll() {
        encoder.removeAll(keepingCapacity: true)
        rows.removeAll(keepingCapacity: true)
        detections.removeAll(keepingCapacity: true)
    }

    /// Calls `body` with each row of `range`: its key, its tuple (valid during the call) and its
    /// window detection, if it has one.
    func forEachRow(in range: Range<Int>, _ body: (RowKey, UnsafeRawBufferPointer, WindowDetection?) -> Void) {
        encoder.withUnsafeBytes { bytes in
            for i in range {
                let row = rows[i]
                body(row.key, UnsafeRawBufferPointer(rebasing: bytes[row.start..<(row.start + row.length)]),
                     row.detection < 0 ? nil : detections[Int(row.detection)])
            }
        }
    }

    /// Encodes `record` (from `source`, pseudonymized under `keyId`) as the rows of its table, and
    /// hands its arrays to `arrays` for the next record. The record's event time (for the
    /// partition's watermark) is read here, where the record is consumed, not copied.
    mutating func append(_ record: consuming AnonymizedRecord, source: SourcePosition, keyId: String,
                         recycling arrays: RecycledArrays?) -> PreparedRecord {
        let first = rows.count
        let provenance = Provenance(source: source, keyId: keyId)
        var prepared = PreparedRecord(outcome: .rows(.training), eventTime: nil)
        switch consume record {
        case .training(let r):
            prepared.eventTime = r.detectedAt
            append(key: RowKey(a: r.scanHash, b: r.resourceHash)) { TableDescription.mlTrainingData.encode(r, provenance: provenance, into: &$0) }
            rows[rows.count - 1].detection = Int32(detections.count)
            detections.append(WindowDetection(r, source: source))
            prepared.user = r.userHash
            arrays?.recycle(metricSummaries: r.metrics, tagKeys: r.tagKeys)
        case .action(let r):
            prepared.eventTime = r.actionAt
            append(key: RowKey(a: r.eventHash)) { TableDescription.userActionPatterns.encode(r, provenance: provenance, into: &$0) }
            prepared.outcome = .rows(.actions)
            prepared.user = r.userHash
        case .lifecycle(let r):
            prepared.eventTime = r.occurredAt
            append(key: RowKey(a: r.eventHash)) { TableDescription.resourceLifecycleEvents.encode(r, provenance: provenance, into: &$0) }
            prepared.outcome = .rows(.lifecycle)
        case .metricPoints(let points):
            for p in points {
                if prepared.eventTime.map({ p.ts > $0 }) ?? true { prepared.eventTime = p.ts }
                append(key: RowKey(a: p.resourceHash, name: p.metric, c: p.ts.micros)) {
                    TableDescription.cloudwatchMetricsHistory.encode(p, provenance: provenance, into: &$0)
                }
            }
            prepared.outcome = .rows(.metrics)
            arrays?.recycle(metricPoints: points.points)
        case .privacy(let r):
            prepared.eventTime = r.requestedAt
            prepared.outcome = .privacy(r)
        case .billed(let r):
            prepared.eventTime = r.usageDate
            append(key: RowKey(a: r.resourceHash, name: r.costType.rawValue, c: r.usageDate.micros)) {
                TableDescription.resourceBilledCosts.encode(r, provenance: provenance, into: &$0)
            }
            prepared.outcome = .rows(.billed)
        }
        prepared.rows = first..<rows.count
        return prepared
    }

    private mutating func append(key: RowKey, _ encode: (inout PostgresBinaryCopyEncoder) -> Void) {
        let start = encoder.count
        encode(&encoder)
        rows.append(Row(key: key, start: start, length: encoder.count - start))
    }
}
