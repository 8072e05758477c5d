import CloudWasteDevTools
public import Foundation

/// A throw-away certificate authority and a server certificate it signed for 127.0.0.1 (an IP
/// subject alternative name, as `sslmode=verify-full` and librdkafka's host check want), plus a
/// second CA that signed nothing, made with the openssl command line. For the TLS tests.
public struct TestCertificates: Sendable {
    public let directory: URL
    public var ca: String { directory.appendingPathComponent("ca.crt").path }
    public var otherCA: String { directory.appendingPathComponent("other.crt").path }
    public var serverCertificate: String { directory.appendingPathComponent("server.crt").path }
    public var serverKey: String { directory.appendingPathComponent("server.key").path }

    public static func make(in directory: URL) async throws -> TestCertificates {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(directory.path)'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=cloudwaste-test-ca
            openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 -subj /CN=some-other-ca
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
            printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext
            chmod 600 server.key
            chmod 755 . && chmod 644 ca.crt other.crt server.crt
            """
        let log = directory.appendingPathComponent("openssl.log").path
        guard try await ChildProcess.run("/bin/bash", ["-c", script], output: .file(log)) == 0 else {
            throw TestFailure("openssl could not make the test certificates: \(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self))")
        }
        return TestCertificates(directory: directory)
    }
}
