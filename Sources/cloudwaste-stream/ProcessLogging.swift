import CloudWasteSecrets
import Logging

/// The process's log output: swift-log to stderr at `CLOUDWASTE_LOG_LEVEL` (default info), every
/// message and metadata value through `SecretRedactor` first.
enum ProcessLogging {
    static let levels = Logger.Level.allCases.map(\.rawValue)

    /// Validates the level (an unknown one is bad usage) and installs the handler, once.
    static func bootstrap(environment: [String: String]) throws {
        var level = Logger.Level.info
        if let text = environment["CLOUDWASTE_LOG_LEVEL"], !text.isEmpty {
            guard let l = Logger.Level(rawValue: text.lowercased()) else {
                throw UsageFailure("CLOUDWASTE_LOG_LEVEL must be one of \(levels.joined(separator: ", ")), not '\(text)'")
            }
            level = l
        }
        LoggingSystem.bootstrap { label in
            var handler = RedactingLogHandler(inner: StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
    }
}

/// Redacts secrets from every log line before the wrapped handler writes it.
struct RedactingLogHandler: LogHandler {
    var inner: StreamLogHandler

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var clean = event
        clean.message = "\(SecretRedactor.redact(event.message.description))"
        clean.metadata = event.metadata?.mapValues { Logger.MetadataValue.string(SecretRedactor.redact($0.description)) }
        inner.log(event: clean)
    }
}
