import CloudWasteKafka
import CloudWastePostgres

/// What a pipeline thread does with an error, decided from the drivers' own flags
/// (`PostgresError.isTransient`/`isDataError`, `KafkaError.isRetriable`/`isFatal`) in this one
/// place. Only infrastructure faults are waited out; an error that retrying cannot cure (a
/// missing table, a revoked permission, an unexpected result, a refused credential) stops the
/// pipeline with that error instead of retrying it forever. Nothing is lost either way: offsets
/// live in PostgreSQL, so the next start reads the uncommitted records again.
enum FailureHandling: Equatable {
    /// A lost connection, a failover, a timeout, a broker away: wait, reconnect, try again.
    case retry
    /// PostgreSQL refused one row's data: the writer bisects the batch down to that record and
    /// dead-letters it. (Where no record is at hand, this is a `stop`.)
    case rejectRecord
    /// The pipeline stops with the error (the process exits non-zero; its supervisor restarts it).
    case stop

    init(_ error: any Error) {
        switch error {
        case let error as PostgresError:
            self = error.isDataError ? .rejectRecord : error.isTransient ? .retry : .stop
        case let error as KafkaError:
            self = error.isRetriable && !error.isFatal ? .retry : .stop
        case is any TransientFailure:
            self = .retry
        default:
            self = .stop
        }
    }

    /// Whether `error` is worth another try. If not, the pipeline is stopped with it (`what`
    /// says what failed) and the caller gives up.
    static func shouldRetry(_ error: any Error, _ what: String, state: PipelineState) -> Bool {
        guard FailureHandling(error) != .retry else { return true }
        state.fail("\(what): \(error) (not retriable)")
        return false
    }
}

/// An error of the pipeline's own that waiting cures (e.g. a topic that could not be read to its
/// end in time): retried like an infrastructure fault.
protocol TransientFailure: Error {}
