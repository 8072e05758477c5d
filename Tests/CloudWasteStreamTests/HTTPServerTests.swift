import Foundation
import Glibc
import Synchronization
import Testing
@testable import CloudWasteStream

/// Talks to a real server on 127.0.0.1 with a raw socket client (more predictable than URLSession on Linux).
@Suite struct HTTPServerTests {
    /// A parsed reply; header names lowercased.
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Routes like the daemon would: /x echoes the request, /slow waits for `gate`, the rest is 404.
    private static func makeServer(port: Int = 0, gate: DispatchSemaphore? = nil) throws -> HTTPServer {
        try HTTPServer(host: "127.0.0.1", port: port) { request in
            switch request.path {
            case "/x":
                let query = request.query.sorted { $0.key < $1.key }.map { "\($0.key)=[\($0.value)]" }
                return .text("\(request.method) \(request.path) \(query.joined(separator: " "))")
            case "/slow":
                _ = gate?.wait(timeout: .now() + 5)
                return .json("{\"slow\":true}")
            default:
                return .text("not found\n", status: 404)
            }
        }
    }

    /// A client socket connected to 127.0.0.1:`port` with a 5 s receive timeout, or nil if refused.
    private static func connectSocket(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Sends `request` raw and reads until the server closes.
    private static func exchange(port: Int, _ request: [UInt8]) throws -> Reply {
        let fd = try #require(connectSocket(port: port), "cannot connect to port \(port)")
        defer { close(fd) }
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }

        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            received += chunk[..<n]
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        let split = try #require(received.firstRange(of: separator), "no header end in \(received.count) bytes")
        let lines = String(decoding: received[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let status = try #require(Int(lines[0].split(separator: " ")[1]))
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: Array(received[split.upperBound...]))
    }

    private static func get(port: Int, _ target: String, method: String = "GET") throws -> Reply {
        try exchange(port: port, Array("\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
    }

    @Test func getReturnsHandlerBodyWithDecodedQuery() throws {
        let server = try Self.makeServer()
        server.start()
        defer { server.stop() }
        #expect(server.port > 0)

        let reply = try Self.get(port: server.port, "/x?a=1&b=%20&c=x+y")
        #expect(reply.status == 200)
        #expect(reply.text == "GET /x a=[1] b=[ ] c=[x y]")
        #expect(reply.headers["content-length"] == String(reply.body.count))
        #expect(reply.headers["content-type"] == "text/plain; charset=utf-8")
        #expect(reply.headers["connection"] == "close")
    }

    @Test func headSendsHeadersButNoBody() throws {
        let server = try Self.makeServer()
        server.start()
        defer { server.stop() }

        let reply = try Self.get(port: server.port, "/x?a=1", method: "HEAD")
        #expect(reply.status == 200)
        #expect(reply.body.isEmpty)
        #expect(reply.headers["content-length"] == String("HEAD /x a=[1]".utf8.count))
    }

    @Test func handlerDecidesStatus() throws {
        let server = try Self.makeServer()
        server.start()
        defer { server.stop() }

        let reply = try Self.get(port: server.port, "/nope")
        #expect(reply.status == 404)
        #expect(reply.text == "not found\n")
        #expect(reply.headers["content-length"] == "10")
    }

    @Test func rejectsOtherMethodsAndMalformedRequests() throws {
        let server = try Self.makeServer()
        server.start()
        defer { server.stop() }

        let post = try Self.get(port: server.port, "/x", method: "POST")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
        #expect(try Self.exchange(port: server.port, Array("nonsense\r\n\r\n".utf8)).status == 400)
    }

    @Test func oversizedHeadersGet431() throws {
        let server = try Self.makeServer()
        server.start()
        defer { server.stop() }

        let big = "GET /x HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n"
        #expect(try Self.exchange(port: server.port, Array(big.utf8)).status == 431)
        // Just under the limit is still fine.
        let fits = "GET /x HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 16_000))\r\n\r\n"
        #expect(try Self.exchange(port: server.port, Array(fits.utf8)).status == 200)
    }

    @Test func slowHandlerDoesNotBlockOtherConnections() throws {
        let gate = DispatchSemaphore(value: 0)
        let server = try Self.makeServer(gate: gate)
        server.start()
        defer { server.stop() }

        final class Status: Sendable { let value = Atomic<Int>(0) }
        let slowStatus = Status()
        let slowDone = DispatchSemaphore(value: 0)
        let port = server.port
        Thread {
            slowStatus.value.store((try? Self.get(port: port, "/slow"))?.status ?? -1, ordering: .relaxed)
            slowDone.signal()
        }.start()

        let started = ContinuousClock.now
        #expect(try Self.get(port: port, "/x").status == 200)
        #expect(ContinuousClock.now - started < .seconds(2))
        gate.signal()
        slowDone.wait()
        #expect(slowStatus.value.load(ordering: .relaxed) == 200)
    }

    @Test func portInUseThrowsClearError() throws {
        let server = try Self.makeServer()
        defer { server.stop() }

        let error = #expect(throws: HTTPServerError.self) { try Self.makeServer(port: server.port) }
        #expect(error?.description.contains("port \(server.port)") == true)
        #expect(error?.code == EADDRINUSE)
    }

    @Test func stopIsIdempotentAndFreesThePort() throws {
        let server = try Self.makeServer()
        server.start()
        let port = server.port
        #expect(try Self.get(port: port, "/x").status == 200)

        server.stop()
        server.stop()
        #expect(Self.connectSocket(port: port) == nil)  // connection refused
        let again = try Self.makeServer(port: port)
        again.stop()
        again.stop()
    }

    @Test func stopWithoutStartReleasesThePort() throws {
        let server = try Self.makeServer()
        let port = server.port
        server.stop()
        try Self.makeServer(port: port).stop()
    }
}
