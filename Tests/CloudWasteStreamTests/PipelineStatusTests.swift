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
