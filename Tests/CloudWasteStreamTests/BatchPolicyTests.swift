import Testing
@testable import CloudWasteStream

/// Adaptive batching: a batch goes to its writer when it is full (records, rows or bytes), or as
/// soon as the writer is idle and the batch has lingered a moment; never while it is empty.
@Suite struct BatchPolicyTests {
    let policy = BatchPolicy(maxRecords: 5000, maxRows: 50_000, maxBytes: 16 << 20, lingerSeconds: 0.01)

    @Test func anIdleWriterGetsASmallBatchAfterTheLinger() {
        #expect(policy.shouldSeal(records: 3, rows: 3, bytes: 2000, ageSeconds: 0.02, writerIdle: true))
        #expect(!policy.shouldSeal(records: 3, rows: 3, bytes: 2000, ageSeconds: 0.001, writerIdle: true))
    }

    @Test func aBusyWriterLetsTheBatchGrowUpToTheLimits() {
        #expect(!policy.shouldSeal(records: 4999, rows: 4999, bytes: 4 << 20, ageSeconds: 30, writerIdle: false))
        #expect(policy.shouldSeal(records: 5000, rows: 5000, bytes: 4 << 20, ageSeconds: 0, writerIdle: false))
    }

    @Test func rowsAndBytesBoundABatchAsRecordsDo() {
        // Five metric-samples records of 10,000 points each: the row limit, not the record limit.
        #expect(policy.shouldSeal(records: 5, rows: 50_000, bytes: 9 << 20, ageSeconds: 0, writerIdle: false))
        #expect(policy.shouldSeal(records: 40, rows: 400, bytes: 16 << 20, ageSeconds: 0, writerIdle: false))
    }

    @Test func anEmptyBatchIsNeverSealed() {
        #expect(!policy.shouldSeal(records: 0, rows: 0, bytes: 0, ageSeconds: 100, writerIdle: true))
    }

    @Test func configuredLimits() {
        var config = StreamConfig()
        config.batchMaxRecords = 10
        config.batchMaxRows = 20
        config.batchMaxBytes = 1 << 20
        config.batchLingerMs = 250
        #expect(BatchPolicy(config: config) == BatchPolicy(maxRecords: 10, maxRows: 20, maxBytes: 1 << 20, lingerSeconds: 0.25))
    }
}
