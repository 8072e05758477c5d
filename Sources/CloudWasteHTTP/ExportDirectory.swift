import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The finished exports under `schedules.export_directory`, as the status page links them and
/// /exports serves them. Only `<folder>/<file>` directly under the export directory is served,
/// only regular files reached without any symbolic link, and only folders with a manifest (a
/// finished export): nothing else on the machine can be reached through /exports.
public struct ExportDirectory: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// The newest finished export folders, newest first, with their files.
    public func latest(limit: Int = 3) -> [(folder: String, files: [String])] {
        let fm = FileManager.default
        let folders = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter(Self.isPlainName).sorted(by: >)
        var out: [(String, [String])] = []
        for folder in folders where isRegularFile("\(root)/\(folder)/manifest.json") && !isSymlink("\(root)/\(folder)") {
            let files = ((try? fm.contentsOfDirectory(atPath: "\(root)/\(folder)")) ?? [])
                .filter { Self.isPlainName($0) && !$0.hasSuffix(".partial") && isRegularFile("\(root)/\(folder)/\($0)") }.sorted()
            out.append((folder, files))
            if out.count == limit { break }
        }
        return out
    }

    /// The path of `folder/file` if it may be served, else nil.
    public func servablePath(folder: String, file: String) -> String? {
        guard Self.isPlainName(folder), Self.isPlainName(file), !file.hasSuffix(".partial") else { return nil }
        let rootReal = realpath(root)
        let dir = "\(root)/\(folder)", path = "\(dir)/\(file)"
        guard !isSymlink(root), !isSymlink(dir), !isSymlink(path), isRegularFile(path), isRegularFile("\(dir)/manifest.json"),
              let rootReal, let real = realpath(path), real.hasPrefix(rootReal + "/") else { return nil }
        return path
    }

    public static func contentType(of file: String) -> String {
        if file.hasSuffix(".json") { return "application/json" }
        if file.hasSuffix(".csv") { return "text/csv; charset=utf-8" }
        if file.hasSuffix(".jsonl") { return "application/x-ndjson" }
        if file.hasSuffix(".gz") { return "application/gzip" }
        return "application/octet-stream"
    }

    /// Letters, digits, `-`, `.`, `_`, not starting with a dot: no `..`, no `/`, no hidden files.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.utf8.count <= 255 && name.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 46 || c == 95 || c == 58
        }
    }

    private func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    private func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    private func realpath(_ path: String) -> String? {
        guard let p = Glibc.realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
