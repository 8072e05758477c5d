import Foundation
@testable import CloudWasteStream
import Testing

/// Readiness is composed from each thread's own status: every writer must be able to write.
@Suite struct PipelineStatusTests {
    static func status(writers: [WriterStatus.State], errors: [String?] = []) -> PipelineStatus {
        var s = PipelineStatus()
        s.assignedPartitions = 4
        s.kafkaJoined = true
        s.writers = writers.enumerated().map { i, state in
            var w = WriterStatus(index: i)
            w.state = state
            w.lastError = i < errors.count ? errors[i] : nil
            return w
        }
        return s
    }

    @Test func readyWhenEveryWriterCanWrite() {
        let s = Self.status(writers: [.idle, .writing, .starting])
        #expect(s.postgresHealthy)
        #expect(s.ready)
        #expect(s.notReadyReason == nil)
    }

    @Test func oneFailingWriterIsNotHiddenByHealthyOnes() {
        let s = Self.status(writers: [.writing, .retrying, .idle], errors: [nil, "57P01: terminating connection", nil])
        #expect(!s.postgresHealthy)
        #expect(!s.ready)
        #expect(s.notReadyReason == "1 of 3 writers cannot write their batches: 57P01: terminating connection")
    }

    @Test func aWriterThatCommittedAgainIsHealthyAgain() {
        var s = Self.status(writers: [.retrying, .retrying], errors: ["08006: connection lost", "08006: connection lost"])
        #expect(s.notReadyReason == "2 of 2 writers cannot write their batches: 08006: connection lost")
        s.writers[0].state = .idle
        s.writers[0].lastError = nil
        #expect(!s.ready)
        s.writers[1].state = .writing
        s.writers[1].lastError = nil
        #expect(s.ready)
    }

    @Test func stoppingAndNoAssignmentAreNotReadyEither() {
        var s = Self.status(writers: [.idle])
        s.stopping = true
        #expect(s.notReadyReason == "stopping")
        s = Self.status(writers: [.idle])
        s.assignedPartitions = 0
        #expect(s.notReadyReason?.hasPrefix("no partitions assigned yet") == true)
    }
}

/// The status is composed on read from what each thread reports about itself.
@Suite struct ComposedStatusTests {
    @Test func writersFiguresAddUpAndTheConsumersAreTakenAsTheyAre() {
        var consumer = ConsumerStatus()
        consumer.assignedPartitions = 3
        consumer.kafkaJoined = true
        consumer.recordsConsumed = 10
        consumer.stageSeconds = ["decode_anonymize_encode": 1.5]
        var a = WriterStatus(index: 0)
        a.state = .idle
        a.recordsCommitted = 6
        a.batchesCommitted = 2
        a.deadLetters = 1
        a.lastCommitAt = Date(timeIntervalSince1970: 100)
        a.stageSeconds = ["copy": 1, "upsert_commit": 2]
        var b = WriterStatus(index: 1)
        b.state = .writing
        b.recordsCommitted = 4
        b.batchesCommitted = 1
        b.lastCommitAt = Date(timeIntervalSince1970: 200)
        b.stageSeconds = ["copy": 0.5]
        var output = OutputStatus()
        output.windowRecomputes = 7
        let s = PipelineStatus(consumer: consumer, writers: [a, b], output: output, stopping: false, startedAt: Date(timeIntervalSince1970: 0))
        #expect(s.recordsCommitted == 10 && s.batchesCommitted == 3 && s.deadLetters == 1 && s.recordsConsumed == 10)
        #expect(s.lastCommitAt == Date(timeIntervalSince1970: 200))
        #expect(s.stageSeconds == ["decode_anonymize_encode": 1.5, "copy": 1.5, "upsert_commit": 2])
        #expect(s.windowRecomputes == 7 && s.ready)
        let stopping = PipelineStatus(consumer: consumer, writers: [a, b], output: output, stopping: true, startedAt: .now)
        #expect(!stopping.ready && stopping.notReadyReason == "stopping")
    }
}
