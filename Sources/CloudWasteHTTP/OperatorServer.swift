public import CloudWasteStream
public import Hummingbird
public import Logging
import Foundation

/// The operator's HTTP surface on Hummingbird: `/healthz`, `/readyz`, `/metrics`, `/stats`, the
/// status page `/` and `/exports/<folder>/<file>`. Every answer comes from memory (`OperatorState`)
/// or is streamed from disk, so slow clients or a frozen database cannot starve the health
/// checks. Binds 127.0.0.1 unless `http.host` says otherwise; `/stats`, `/` and `/exports` take an
/// optional bearer token.
public enum OperatorServer {
    /// The router alone (what HummingbirdTesting drives in tests).
    public static func router(state: OperatorState, token: String?) -> Router<BasicRequestContext> {
        let router = Router()
        let exports = ExportDirectory(root: state.config.exportRoot)
        router.get("/healthz") { _, _ -> Response in
            state.pipeline.isStopping ? text("stopping\n", status: .serviceUnavailable) : text("ok\n")
        }
        router.get("/readyz") { _, _ -> Response in
            let s = state.pipeline.status
            let body = "kafka_joined=\(s.kafkaJoined) postgres_healthy=\(s.postgresHealthy) assigned_partitions=\(s.assignedPartitions)\n"
                + (s.notReadyReason.map { "not ready: \($0)\n" } ?? "")
            return text(body, status: s.ready ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
            text(state.pipeline.metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        let guarded = router.group()
        if let token { guarded.add(middleware: BearerTokenMiddleware(token: token)) }
        guarded.get("/stats") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: StatusDocument(state: state).json)))
        }
        guarded.get("/") { _, _ -> Response in
            text(StatusPage.render(state: state, exports: exports), contentType: "text/html; charset=utf-8")
        }
        guarded.get("/exports/:folder/:file") { _, context -> Response in
            guard let folder = context.parameters.get("folder"), let file = context.parameters.get("file"),
                  let path = exports.servablePath(folder: folder, file: file) else {
                return text("not found\n", status: .notFound)
            }
            // Streamed from disk in chunks: ten parallel downloads of a large export cost ten
            // chunk buffers, not ten files in memory.
            let body = try await FileIO().loadFile(path: path, context: context)
            return Response(status: .ok, headers: [.contentType: ExportDirectory.contentType(of: file)], body: body)
        }
        return router
    }

    /// The server, to run as a service of the daemon's ServiceGroup.
    public static func application(state: OperatorState, host: String, port: Int, token: String?, logger: Logger)
        -> some ApplicationProtocol {
        Application(router: router(state: state, token: token),
                    server: .http1(configuration: .init(idleTimeout: .seconds(15))),
                    configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "cloudwaste-stream"),
                    logger: logger)
    }

    static func text(_ body: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
