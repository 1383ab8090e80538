import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum Term {
    public static let stderrIsTTY = isatty(2) == 1
    private static let lock = NSLock()
    nonisolated(unsafe) static var barShown = false
    public static func stderr(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        var s = line + "\n"
        if barShown { s = "\r\u{1B}[2K" + s; barShown = false }
        _ = s.withCString { write(2, $0, strlen($0)) }
    }
    static func bar(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        let s = "\r\u{1B}[2K" + text
        _ = s.withCString { write(2, $0, strlen($0)) }
        barShown = true
    }
    static func clearBar() {
        lock.lock(); defer { lock.unlock() }
        if barShown { _ = "\r\u{1B}[2K".withCString { write(2, $0, strlen($0)) }; barShown = false }
    }
    public static func stdout(_ line: String) {
        let s = line + "\n"
        _ = s.withCString { write(1, $0, strlen($0)) }
    }
}
