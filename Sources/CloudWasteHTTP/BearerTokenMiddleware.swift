public import Hummingbird
import Foundation

/// Requires `Authorization: Bearer <token>` on the routes it guards (/stats, the status page,
/// /exports) when a token is configured (`http.token_file` or `CLOUDWASTE_HTTP_TOKEN`). The
/// comparison takes the same time whatever the token, so it cannot be guessed byte by byte.
public struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    public init(token: String) { self.token = Array(token.utf8) }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization] ?? ""
        let presented = header.hasPrefix("Bearer ") ? Array(header.dropFirst(7).utf8) : []
        guard Self.constantTimeEqual(presented, token) else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"cloudwaste-stream\"",
                                                             .contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: "unauthorized: send Authorization: Bearer <token> (http.token_file)\n")))
        }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
