/// When an open batch is handed to its writer. Adaptive: while the writer is busy the batch keeps
/// growing (up to the limits), and the moment the writer is idle it gets what there is, after at
/// most `lingerSeconds` for a burst to gather. So under light load batches are small and commit
/// fast, and under a backlog they grow to the maximum by themselves. Records, rows and bytes are
/// all bounded: one metric-samples record can carry ten thousand rows.
public struct BatchPolicy: Sendable, Equatable {
    public var maxRecords: Int
    public var maxRows: Int
    public var maxBytes: Int
    public var lingerSeconds: Double

    public init(maxRecords: Int, maxRows: Int, maxBytes: Int, lingerSeconds: Double) {
        self.maxRecords = maxRecords
        self.maxRows = maxRows
        self.maxBytes = maxBytes
        self.lingerSeconds = lingerSeconds
    }

    public init(config: StreamConfig) {
        self.init(maxRecords: config.batchMaxRecords, maxRows: config.batchMaxRows, maxBytes: config.batchMaxBytes,
                  lingerSeconds: Double(config.batchLingerMs) / 1000)
    }

    public func isFull(records: Int, rows: Int, bytes: Int) -> Bool {
        records >= maxRecords || rows >= maxRows || bytes >= maxBytes
    }

    /// Whether a batch of this size and age should go to its writer now.
    public func shouldSeal(records: Int, rows: Int, bytes: Int, ageSeconds: Double, writerIdle: Bool) -> Bool {
        guard records > 0 else { return false }
        if isFull(records: records, rows: rows, bytes: bytes) { return true }
        return writerIdle && ageSeconds >= lingerSeconds
    }
}
