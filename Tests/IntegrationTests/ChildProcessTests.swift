import CloudWasteDevTools
import Foundation
import Testing
import TestSupport

/// The dev tools' child processes on swift-subprocess: where output goes, exit codes and
/// signals, the environment and folder a child gets, and a hung child that is killed at its
/// deadline instead of hanging the caller.
@Suite struct ChildProcessTests {
    static func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "cw-child-\(name)-\(UUID().uuidString.prefix(8))"
    }

    static func read(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    @Test func stdoutAndStderrGoWhereTheCallerSaysAndTheExitCodeComesBack() async throws {
        let out = Self.temporaryPath("out"), err = Self.temporaryPath("err"), both = Self.temporaryPath("both")
        defer { for p in [out, err, both] { try? FileManager.default.removeItem(atPath: p) } }
        let script = ["-c", "echo to-stdout; echo to-stderr >&2; exit 3"]
        #expect(try await ChildProcess.run("/bin/sh", script, output: .file(out), error: .file(err)) == 3)
        #expect(Self.read(out) == "to-stdout\n")
        #expect(Self.read(err) == "to-stderr\n")
        // Without `error`, stderr goes along with stdout.
        #expect(try await ChildProcess.run("/bin/sh", script, output: .file(both)) == 3)
        #expect(Self.read(both).split(separator: "\n").sorted() == ["to-stderr", "to-stdout"])
    }

    @Test func theChildGetsExactlyTheEnvironmentAndFolderItIsGiven() async throws {
        let out = Self.temporaryPath("env")
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(try await ChildProcess.run("/usr/bin/env", [], environment: ["ONLY_THIS": "1"], output: .file(out)) == 0)
        #expect(Self.read(out) == "ONLY_THIS=1\n")
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).resolvingSymlinksInPath().path
        #expect(try await ChildProcess.run("/bin/pwd", [], workingDirectory: folder, output: .file(out)) == 0)
        #expect(Self.read(out) == folder + "\n")
    }

    @Test func aSignalledChildReports128PlusTheSignal() async throws {
        let child = try await ChildProcess.start("/bin/sleep", ["30"])
        #expect(child.isRunning)
        child.signal(SIGTERM)
        #expect(try await child.exit(within: 10) == 128 + SIGTERM)
        #expect(!child.isRunning)
    }

    @Test func aChildStillRunningAtItsDeadlineIsKilledAndReported() async throws {
        let started = Date()
        let child = try await ChildProcess.start("/bin/sleep", ["30"])
        await #expect(throws: ChildProcess.Failure.self) { try await child.exit(within: 0.5) }
        #expect(!child.isRunning)
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func aMissingExecutableIsAClearError() async throws {
        do {
            try await ChildProcess.run("/nonexistent/cloudwaste-tool", ["x"])
            Issue.record("a missing executable started")
        } catch let failure as ChildProcess.Failure {
            #expect(failure.description.contains("cannot start /nonexistent/cloudwaste-tool x"), "\(failure)")
        }
    }
}
