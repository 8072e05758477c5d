import Foundation
import Glibc
import Synchronization

/// A request as a handler sees it: just enough to route operational endpoints.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path as sent, without the query string.
    public var path: String
    /// Query parameters, percent-decoded (`+` is a space); the last of repeated keys wins.
    public var query: [String: String]

    public init(method: String, path: String, query: [String: String] = [:]) {
        self.method = method
        self.path = path
        self.query = query
    }

    /// Splits a request target such as `/x?a=1&b=%20` into path and decoded query.
    init(method: String, target: Substring) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = percentDecoded(kv[0])
                if !key.isEmpty { query[key] = kv.count == 2 ? percentDecoded(kv[1]) : "" }
            }
        }
        self.init(method: method, path: String(parts[0]), query: query)
    }
}

/// What a handler returns; the server adds Content-Length and `Connection: close`.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    /// Extra headers. Content-Type, Content-Length and Connection are always set by the server.
    public var headers: [(String, String)]

    public init(status: Int = 200, contentType: String = "text/plain; charset=utf-8",
                body: [UInt8] = [], headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    public static func text(_ s: String, status: Int = 200,
                            contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, contentType: contentType, body: Array(s.utf8))
    }

    public static func json(_ s: String, status: Int = 200) -> HTTPResponse {
        text(s, status: status, contentType: "application/json")
    }

    public static func html(_ s: String, status: Int = 200) -> HTTPResponse {
        text(s, status: status, contentType: "text/html; charset=utf-8")
    }

    /// The bytes on the wire; `includeBody` is false for HEAD (Content-Length still describes the body).
    func serialized(includeBody: Bool) -> [UInt8] {
        func clean(_ s: String) -> String { s.filter { !$0.isNewline } }  // no header injection
        var head = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "")\r\n"
            + "Content-Type: \(clean(contentType))\r\n"
            + "Content-Length: \(body.count)\r\n"
            + "Connection: close\r\n"
        for (name, value) in headers
        where !["content-type", "content-length", "connection"].contains(name.lowercased()) {
            head += "\(clean(name)): \(clean(value))\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (includeBody ? body : [])
    }

    private static let reasons: [Int: String] = [
        200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
        301: "Moved Permanently", 302: "Found", 304: "Not Modified",
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 408: "Request Timeout", 431: "Request Header Fields Too Large",
        500: "Internal Server Error", 503: "Service Unavailable",
    ]
}

/// Why the server could not start, worded for an operator reading the log.
public struct HTTPServerError: Error, CustomStringConvertible {
    public let description: String
    /// The `errno` behind the failure, if there was one (e.g. `EADDRINUSE`).
    public let code: Int32?

    init(_ description: String, code: Int32? = nil) {
        self.description = description
        self.code = code
    }
}

/// A tiny HTTP/1.1 server on POSIX sockets for the daemon's operational endpoints
/// (/healthz, /readyz, /metrics, status page), so it needs no SwiftNIO.
///
/// One request per connection (`Connection: close`), GET and HEAD only, each connection
/// on its own short-lived thread so a slow handler delays only its own request.
/// While started, the accept thread keeps the server alive until `stop()`.
public final class HTTPServer: Sendable {
    /// The bound port (the real one when 0 was asked for).
    public let port: Int

    private enum State { case idle, running, stopped }

    private let listener: Int32
    private let handler: @Sendable (HTTPRequest) -> HTTPResponse
    private let state = Mutex(State.idle)
    private let acceptLoopFinished = DispatchSemaphore(value: 0)
    private let activeConnections = Atomic<Int>(0)

    static let maxHeaderBytes = 16 * 1024
    static let maxConnections = 64
    static let readTimeout = Duration.seconds(5)

    /// Binds and listens immediately, so a bad port fails at startup rather than later.
    public init(host: String = "0.0.0.0", port: Int,
                handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        guard (0...65535).contains(port) else {
            throw HTTPServerError("port \(port) is out of range: use 0-65535")
        }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var addresses: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &addresses)
        guard rc == 0, let address = addresses?.pointee else {
            throw HTTPServerError("cannot resolve HTTP host \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(addresses) }

        let fd = socket(address.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerError("cannot create socket: \(Self.errorText(errno))", code: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, address.ai_addr, address.ai_addrlen) == 0, listen(fd, 128) == 0 else {
            let code = errno
            close(fd)
            if code == EADDRINUSE {
                throw HTTPServerError("port \(port) is already in use: choose another with CLOUDWASTE_HTTP_PORT", code: code)
            }
            throw HTTPServerError("cannot listen on \(host):\(port): \(Self.errorText(code))", code: code)
        }

        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // sin_port and sin6_port both sit at offset 2, in network byte order.
        self.port = withUnsafeBytes(of: bound) { Int($0[2]) << 8 | Int($0[3]) }
        self.listener = fd
        self.handler = handler
    }

    deinit { stop() }  // only reachable when never started or already stopped

    /// Starts the accept loop on its own thread. Calling it again, or after `stop()`, does nothing.
    public func start() {
        let starting = state.withLock { state in
            guard state == .idle else { return false }
            state = .running
            return true
        }
        guard starting else { return }
        let thread = Thread { [self] in
            acceptLoop()
            acceptLoopFinished.signal()
        }
        thread.name = "http-accept"
        thread.start()
    }

    /// Stops accepting, waits for the accept thread, and frees the port. Idempotent.
    /// Requests already being served finish on their own threads.
    public func stop() {
        let previous = state.withLock { state in
            defer { state = .stopped }
            return state
        }
        switch previous {
        case .stopped:
            return
        case .idle:
            close(listener)
        case .running:
            shutdown(listener, Int32(SHUT_RDWR))  // makes the blocked accept(2) return
            acceptLoopFinished.wait()
            close(listener)  // only now, so the descriptor cannot be reused under accept(2)
        }
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else {
                let code = errno
                if state.withLock({ $0 == .stopped }) { return }
                if code != EINTR && code != ECONNABORTED { usleep(10_000) }  // e.g. EMFILE: back off, don't spin
                continue
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)  // Glibc's module hides accept4
            guard activeConnections.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                activeConnections.subtract(1, ordering: .relaxed)
                close(connection)
                continue
            }
            let thread = Thread { [self] in
                serve(connection)
                activeConnections.subtract(1, ordering: .relaxed)
            }
            thread.name = "http-connection"
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { Self.lingeringClose(fd) }
        var sendTimeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        let response: HTTPResponse
        var includeBody = true
        switch Self.readHead(fd) {
        case nil:
            return  // client went away or timed out before sending a full request
        case .some(.tooLarge):
            response = .text("request header fields too large\n", status: 431)
        case .some(.complete(let head)):
            (response, includeBody) = respond(to: head)
        }
        Self.sendAll(fd, response.serialized(includeBody: includeBody))
    }

    /// Parses the request line and calls the handler; returns whether to send the body.
    private func respond(to head: ArraySlice<UInt8>) -> (HTTPResponse, Bool) {
        let lineEnd = head.firstIndex(of: UInt8(ascii: "\r")) ?? head.endIndex
        let line = String(decoding: head[..<lineEnd], as: UTF8.self)
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return (.text("bad request\n", status: 400), true)
        }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            var response = HTTPResponse.text("method not allowed\n", status: 405)
            response.headers.append(("Allow", "GET, HEAD"))
            return (response, true)
        }
        guard parts[1].hasPrefix("/") else { return (.text("bad request\n", status: 400), true) }
        return (handler(HTTPRequest(method: String(parts[0]), target: parts[1])), parts[0] == "GET")
    }

    private enum Head { case complete(ArraySlice<UInt8>), tooLarge }

    /// Reads up to the blank line ending the headers, within 16 KiB and 5 s overall.
    private static func readHead(_ fd: Int32) -> Head? {
        let deadline = ContinuousClock.now + readTimeout
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = receive(fd, into: &chunk, until: deadline)
            guard n > 0 else { return nil }
            let searchStart = max(0, buffer.count - 3)
            buffer += chunk[..<n]
            if let end = headerEnd(in: buffer, from: searchStart) {
                return end <= maxHeaderBytes ? .complete(buffer[..<end]) : .tooLarge
            }
            if buffer.count >= maxHeaderBytes { return .tooLarge }
        }
    }

    /// The index just past the first CRLFCRLF at or after `start`.
    private static func headerEnd(in buffer: [UInt8], from start: Int) -> Int? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var i = start
        while i + 4 <= buffer.count {
            if buffer[i..<i + 4].elementsEqual(terminator) { return i + 4 }
            i += 1
        }
        return nil
    }

    /// recv(2) bounded by an overall deadline, so a client trickling bytes cannot hold a thread forever.
    private static func receive(_ fd: Int32, into buffer: inout [UInt8], until deadline: ContinuousClock.Instant) -> Int {
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return -1 }
            let (seconds, attoseconds) = remaining.components
            // A zero timeval would mean "no timeout", hence at least 1 µs.
            var timeout = timeval(tv_sec: Int(seconds), tv_usec: max(1, Int(attoseconds / 1_000_000_000_000)))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    private static func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                // MSG_NOSIGNAL: a client that hung up must not kill the daemon with SIGPIPE.
                let n = send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    /// Closes after draining what the client still sends (up to 1 s / 64 KiB), so an early
    /// response such as 431 is not destroyed by a TCP reset caused by unread input.
    private static func lingeringClose(_ fd: Int32) {
        shutdown(fd, Int32(SHUT_WR))
        let deadline = ContinuousClock.now + .seconds(1)
        var scratch = [UInt8](repeating: 0, count: 4096)
        var drained = 0
        while drained < 64 * 1024 {
            let n = receive(fd, into: &scratch, until: deadline)
            if n <= 0 { break }
            drained += n
        }
        close(fd)
    }

    private static func errorText(_ code: Int32) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }
}

/// Decodes `%XX` escapes and `+` (form encoding); malformed escapes are kept literally.
private func percentDecoded(_ s: Substring) -> String {
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    let bytes = Array(s.utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) {
            out.append(high << 4 | low)
            i += 3
        } else {
            out.append(bytes[i] == UInt8(ascii: "+") ? UInt8(ascii: " ") : bytes[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
