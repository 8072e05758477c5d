import CloudWasteStream
import Foundation

/// What a finished `run` did, for scripts: printed as the one `run:` line (key=value pairs) and,
/// with `--summary-file`, written as JSON, which is what the benchmark reads.
struct RunSummary: Codable {
    var records: Int
    var batches: Int
    var deadLetters: Int
    /// First consumed record to last commit.
    var seconds: Double
    var recordsPerSecond: Double
    var peakRSSMB: Int
    /// Heap allocations of the whole process, when the allocation counter is preloaded.
    var allocations: Int?
    /// The part of `allocations` made on librdkafka's own threads.
    var librdkafkaAllocations: Int?
    var writers: Int
    var firstRecordUnix: Double
    var lastCommitUnix: Double
    var stageSeconds: [String: Double]

    enum CodingKeys: String, CodingKey {
        case records, batches, writers, seconds, allocations
        case deadLetters = "dead_letters"
        case librdkafkaAllocations = "librdkafka_allocations"
        case recordsPerSecond = "records_per_second"
        case peakRSSMB = "peak_rss_mb"
        case firstRecordUnix = "first_record_unix"
        case lastCommitUnix = "last_commit_unix"
        case stageSeconds = "stage_seconds"
    }

    init(_ s: PipelineStatus) {
        records = s.recordsCommitted
        batches = s.batchesCommitted
        deadLetters = s.deadLetters
        seconds = s.firstRecordAt.flatMap { first in s.lastCommitAt.map { $0.timeIntervalSince(first) } } ?? 0
        recordsPerSecond = s.throughput ?? 0
        peakRSSMB = (ProcessMemory.peakResidentBytes ?? 0) / 1_048_576
        allocations = HeapAllocations.count
        librdkafkaAllocations = HeapAllocations.librdkafkaCount
        writers = s.writers.count
        firstRecordUnix = s.firstRecordAt?.timeIntervalSince1970 ?? 0
        lastCommitUnix = s.lastCommitAt?.timeIntervalSince1970 ?? 0
        stageSeconds = s.stageSeconds
    }

    var line: String {
        let unix = { (t: Double) in String(format: "%.3f", t) }
        return "run: records=\(records) batches=\(batches) dead_letters=\(deadLetters) seconds=\(String(format: "%.3f", seconds)) rps=\(Int(recordsPerSecond)) peak_rss_mb=\(peakRSSMB)"
            + (allocations.map { " allocations=\($0)" } ?? "") + (librdkafkaAllocations.map { " librdkafka_allocations=\($0)" } ?? "")
            + " writers=\(writers) first_record_unix=\(unix(firstRecordUnix)) last_commit_unix=\(unix(lastCommitUnix))"
            + stageSeconds.keys.sorted().map { " stage_\($0)=\(String(format: "%.2f", stageSeconds[$0]!))" }.joined()
    }

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }

    static func read(from path: String) throws -> RunSummary {
        try JSONDecoder().decode(RunSummary.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
