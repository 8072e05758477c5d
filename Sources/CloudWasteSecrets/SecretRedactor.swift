import Foundation
import Synchronization

/// The one redaction step that every error line, log line and status text passes through before
/// it leaves the process (SPEC §10: never a secret). libpq echoes malformed connection strings,
/// librdkafka echoes property values; both may carry passwords. Two kinds of rule: the secrets
/// this process was given (the connection string's password, `*password*` / `*secret*` Kafka
/// properties, the HMAC key text), replaced wherever they appear, and the shapes of secrets
/// (`scheme://user:password@`, `password=…`, `sasl.password=…`), for values we were never told.
/// A module of its own, below both wrappers, so that their errors are redacted where they are made.
public enum SecretRedactor {
    private static let secrets = Mutex<Set<String>>([])
    public static let mask = "***"

    /// Registers values that must never be shown (shorter than 4 characters are ignored: they
    /// would mask ordinary words).
    public static func register(_ values: some Sequence<String>) {
        let useful = values.filter { $0.count >= 4 }
        guard !useful.isEmpty else { return }
        secrets.withLock { $0.formUnion(useful) }
    }

    /// Registers the password of a libpq connection string or URI.
    public static func register(connectionString: String) {
        register(passwords(in: connectionString))
    }

    /// `text` with every registered secret and every secret-shaped value masked.
    public static func redact(_ text: String) -> String {
        var out = text
        for secret in secrets.withLock({ $0 }).sorted(by: { $0.count > $1.count }) where out.contains(secret) {
            out = out.replacingOccurrences(of: secret, with: mask)
        }
        for (pattern, template) in patterns {
            let range = NSRange(out.startIndex..., in: out)
            out = pattern.stringByReplacingMatches(in: out, range: range, withTemplate: template)
        }
        return out
    }

    nonisolated(unsafe) private static let patterns: [(NSRegularExpression, String)] = [
        // URI userinfo: postgresql://user:password@host, also inside quotes.
        (try! NSRegularExpression(pattern: #"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s"']*:)[^@\s"']*@"#), "$1\(mask)@"),
        // keyword=value forms: password=…, sasl.password=…, ssl.key.password: …, secret=…
        (try! NSRegularExpression(pattern: #"(?i)([A-Za-z0-9_.]*(password|passwd|secret|sasl\.oauthbearer\.config)[A-Za-z0-9_.]*\s*[=:]\s*)('[^']*'|"[^"]*"|[^\s,;&"']+)"#),
         "$1\(mask)"),
    ]

    /// The password values of a connection string, in URI (`user:pw@`, `?password=pw`) or
    /// keyword (`password=pw`, `password='p w'`) form.
    static func passwords(in connectionString: String) -> [String] {
        var out: [String] = []
        let s = connectionString
        if let scheme = s.range(of: "://") {
            let rest = s[scheme.upperBound...]
            if let at = rest.firstIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                let raw = String(rest[rest.index(after: colon)..<at])
                out.append(raw)
                if let decoded = raw.removingPercentEncoding { out.append(decoded) }
            }
        }
        let keyword = try! NSRegularExpression(pattern: #"(?i)password\s*=\s*('((?:[^'\\]|\\.)*)'|[^\s&]+)"#)
        for m in keyword.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            let group = m.range(at: 2).location != NSNotFound ? 2 : 1
            if let r = Range(m.range(at: group), in: s) {
                let value = String(s[r])
                out.append(value)
                if let decoded = value.removingPercentEncoding { out.append(decoded) }
            }
        }
        return out
    }
}
