import CloudWasteKafka
import CRdKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Testing

/// The one place that decides what a pipeline thread does with an error.
struct FailureHandlingTests {
    @Test func postgresErrorsAreRetriedOnlyWhenTheInfrastructureFailed() {
        func handling(_ kind: PostgresError.Kind, _ state: String?) -> FailureHandling {
            FailureHandling(PostgresError(kind: kind, sqlState: state, message: "m"))
        }
        #expect(handling(.connection, nil) == .retry)
        #expect(handling(.query, nil) == .retry)          // libpq's own failure, e.g. a reset connection
        for state in ["08006", "40001", "40P01", "53100", "57P01", "57014", "58030", "XX000", "55P03", "25006"] {
            #expect(handling(.query, state) == .retry, "\(state)")
        }
        for state in ["22003", "22P02", "23505", "23514"] { #expect(handling(.query, state) == .rejectRecord, "\(state)") }
        for state in ["42P01", "42703", "42501", "0A000", "25001"] { #expect(handling(.query, state) == .stop, "\(state)") }
        #expect(handling(.unexpectedResult, nil) == .stop)
    }

    @Test func librdkafkasCodesAreRetriableUnlessWaitingCannotCureThem() {
        for code in [RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
                     RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE] {
            #expect(FailureHandling(KafkaError(code, context: "c")) == .retry, "\\(code)")
        }
        for code in [RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR__INVALID_ARG,
                     RD_KAFKA_RESP_ERR__FATAL] {
            #expect(FailureHandling(KafkaError(code, context: "c")) == .stop, "\\(code)")
        }
    }

    @Test func kafkaErrorsAreRetriedUnlessPermanentOrFatal() {
        #expect(FailureHandling(KafkaError(message: "m", isRetriable: true)) == .retry)
        #expect(FailureHandling(KafkaError(message: "m", isRetriable: false)) == .stop)
        #expect(FailureHandling(KafkaError(message: "m", isFatal: true, isRetriable: true)) == .stop)
        #expect(FailureHandling(CancellationError()) == .stop)
        #expect(FailureHandling(DeadLetterPublisher.RecoveryTimeout(topic: "t")) == .retry)
    }

    @Test func aRefusedErrorStopsThePipelineWithItsReason() {
        let state = PipelineState(gracePeriod: .seconds(1))
        #expect(FailureHandling.shouldRetry(PostgresError(kind: .connection, message: "gone"), "writing", state: state))
        #expect(state.failure == nil && !state.isStopping)
        #expect(!FailureHandling.shouldRetry(PostgresError(kind: .query, sqlState: "42P01", message: "no table"), "writing", state: state))
        #expect(state.isStopping)
        #expect(state.failure == "writing: PostgreSQL error 42P01: no table (not retriable)")
    }
}
