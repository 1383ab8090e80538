import Foundation
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// A per-cell table read by columns without keeping its rows: a million-cell table costs the
/// columns asked for, not the whole text. The file is read in 4 MiB pieces; fields follow RFC
/// 4180 (quotes, doubled quotes, commas and line breaks inside quotes; CRLF or LF lines; blank
/// lines skipped), the same rules as `CSV.parse`.
public struct CSVColumns: Sendable {
    public let path: String
    public let header: [String]
    /// Data rows.
    public let count: Int
    /// Numeric columns asked for: NaN where a field is empty or not a number.
    public var numbers: [String: [Double]]
    /// Text columns asked for, as written (quotes removed).
    public var strings: [String: [String]]
    /// The first data row's fields (all columns), e.g. to tell text columns from numbers.
    public let firstRow: [String]

    public func column(_ name: String) -> Int? { header.firstIndex(of: name) }
    public func doubles(_ name: String) -> [Double]? { numbers[name] }

    /// Reads the header, counts the rows (each must have the header's number of fields) and keeps
    /// the named columns; names not in the header are left out of `numbers`/`strings`.
    public static func read(_ path: String, numbers wantN: [String], strings wantS: [String]) throws -> CSVColumns {
        var header: [String] = [], first: [String] = []
        var nIdx: [(Int, String)] = [], sIdx: [(Int, String)] = []
        var nums: [[Double]] = [], strs: [[String]] = []
        var rows = 0
        try CSVStream.forEachRecord(path) { line, fields, bytes in
            if line == 0 {
                header = fields.map { String(decoding: CSVStream.slice(bytes, $0), as: UTF8.self).trimmingCharacters(in: .whitespaces) }
                header = header.map(CSVStream.unquote)
                for (i, h) in header.enumerated() {
                    if wantN.contains(h) { nIdx.append((i, h)) }
                    if wantS.contains(h) { sIdx.append((i, h)) }
                }
                nums = Array(repeating: [], count: nIdx.count); strs = Array(repeating: [], count: sIdx.count)
                return
            }
            guard fields.count == header.count else {
                throw EpipeError.badInput("\(path): line \(line + 1) has \(fields.count) fields, the header has \(header.count)")
            }
            if rows == 0 { first = fields.map { CSVStream.unquote(String(decoding: CSVStream.slice(bytes, $0), as: UTF8.self)) } }
            for (c, (i, _)) in nIdx.enumerated() { nums[c].append(CSVStream.number(CSVStream.slice(bytes, fields[i]))) }
            for (c, (i, _)) in sIdx.enumerated() { strs[c].append(CSVStream.unquote(String(decoding: CSVStream.slice(bytes, fields[i]), as: UTF8.self))) }
            rows += 1
        }
        guard !header.isEmpty, !(header.count == 1 && header[0].isEmpty) else { throw EpipeError.badInput("\(path): empty CSV (no header line)") }
        var n: [String: [Double]] = [:], s: [String: [String]] = [:]
        for (c, (_, h)) in nIdx.enumerated() { n[h] = nums[c] }
        for (c, (_, h)) in sIdx.enumerated() { s[h] = strs[c] }
        return CSVColumns(path: path, header: header, count: rows, numbers: n, strings: s, firstRow: first)
    }

    /// Writes the table again with the columns named in `drop` left out and new columns
    /// appended: `extra(row)` gives row's values (quoted here as needed). The kept fields are
    /// copied byte for byte. Written to a temporary name and renamed into place.
    public func rewrite(to out: String, drop: Set<String>, appending names: [String], extra: (Int) -> [String]) throws {
        let keep = header.indices.filter { !drop.contains(header[$0]) }
        let tmp = AtomicFile.temporaryPath(for: out)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EpipeError.failed("\(out): cannot create temporary file (\(String(cString: strerror(errno)))); check permissions and free space") }
        var buf: [UInt8] = []
        buf.reserveCapacity(1 << 22)
        var err: Int32 = 0
        func flush() { if err == 0 && !buf.isEmpty { err = buf.withUnsafeBytes { FileIO.writeAll(fd, $0) } }; buf.removeAll(keepingCapacity: true) }
        do {
            try CSVStream.forEachRecord(path) { line, fields, bytes in
                guard line == 0 || fields.count == header.count else {
                    throw EpipeError.badInput("\(path): line \(line + 1) has \(fields.count) fields, the header has \(header.count)")
                }
                for (o, i) in keep.enumerated() {
                    if o > 0 { buf.append(44) }
                    buf.append(contentsOf: CSVStream.slice(bytes, fields[i]))
                }
                let add = line == 0 ? names : extra(line - 1)
                for (o, v) in add.enumerated() {
                    if !keep.isEmpty || o > 0 { buf.append(44) }
                    buf.append(contentsOf: CSV.quote(v).utf8)
                }
                buf.append(10)
                if buf.count >= 1 << 22 { flush() }
            }
        } catch { close(fd); unlink(tmp); throw error }
        flush()
        if err == 0 && fsync(fd) != 0 { err = errno }
        close(fd)
        guard err == 0 else { unlink(tmp); throw EpipeError.failed("\(out): write failed (\(String(cString: strerror(err)))); check free space") }
        try AtomicFile.commit(temporary: tmp, to: out)
    }
}

public enum CSVStream {
    struct Stop: Error {}

    /// The header and first data row of a CSV (quotes removed), read without the rest of the file.
    public static func head(_ path: String) throws -> (header: [String], first: [String]?) {
        var h: [String] = [], f: [String]? = nil
        do {
            try forEachRecord(path) { line, fields, bytes in
                let v = fields.map { unquote(String(decoding: slice(bytes, $0), as: UTF8.self).trimmingCharacters(in: .whitespaces)) }
                if line == 0 { h = v } else { f = v; throw Stop() }
            }
        } catch is Stop {}
        guard !h.isEmpty, !(h.count == 1 && h[0].isEmpty) else { throw EpipeError.badInput("\(path): empty CSV (no header line)") }
        return (h, f)
    }

    /// Calls `body(record index, field byte ranges, bytes)` for each non-blank record (the header
    /// is record 0); field ranges index `bytes` and include any quotes. Reads 4 MiB at a time.
    public static func forEachRecord(_ path: String, _ body: (Int, [Range<Int>], UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EpipeError.badInput("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        // 4 MiB at a time, less for a smaller file (grown below for a record longer than that)
        var st = stat()
        let size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        var buf = [UInt8](repeating: 0, count: min(1 << 22, max(1 << 12, size + 1)))
        var have = 0, eof = false, record = 0
        var fields: [Range<Int>] = []
        fields.reserveCapacity(256)
        while true {
            while !eof && have < buf.count {
                let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + have, $0.count - have) }
                if r < 0 { throw EpipeError.failed("\(path): read failed (\(String(cString: strerror(errno))))") }
                if r == 0 { eof = true } else { have += r }
            }
            // whole records of buf[0..<have]; one cut by the buffer's end waits for more bytes
            // (at the end of the file it is the last record, with or without a line break)
            var start = 0
            try buf.withUnsafeBufferPointer { b in
                while start < have {
                    fields.removeAll(keepingCapacity: true)
                    var f0 = start, quoted = false, complete = false, j = start
                    while j < have {
                        let c = b[j]
                        if quoted {
                            if c == 34 { if j + 1 < have && b[j + 1] == 34 { j += 2; continue }; quoted = false }
                        } else if c == 34 { quoted = true } else if c == 44 { fields.append(f0..<j); f0 = j + 1 }
                        else if c == 10 { complete = true; break }
                        j += 1
                    }
                    if !complete && !eof { return }
                    var e = j
                    if e > f0 && b[e - 1] == 13 { e -= 1 }
                    fields.append(f0..<max(f0, e))
                    if !(fields.count == 1 && fields[0].isEmpty) { try body(record, fields, b); record += 1 }
                    start = complete ? j + 1 : have
                }
            }
            if eof { return }
            if start == 0 { buf += [UInt8](repeating: 0, count: buf.count); continue }   // a record longer than the buffer
            buf.withUnsafeMutableBytes { m in if have > start { memmove(m.baseAddress!, m.baseAddress! + start, have - start) } }
            have -= start
        }
    }

    /// The bytes of one field.
    @inline(__always) public static func slice(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: b[r]))
    }

    /// A field's text without its surrounding quotes (doubled quotes undone). By bytes, not
    /// Characters: a quote followed by a combining mark is still a quote.
    public static func unquote(_ s: String) -> String {
        let u = Array(s.utf8)
        guard u.count >= 2, u[0] == 34, u[u.count - 1] == 34 else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(u.count - 2)
        var i = 1
        while i < u.count - 1 {
            out.append(u[i])
            i += u[i] == 34 && i + 1 < u.count - 1 && u[i + 1] == 34 ? 2 : 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The number in a field (spaces and quotes around it allowed); NaN when empty or not a number.
    public static func number(_ f: UnsafeRawBufferPointer) -> Double {
        var a = 0, b = f.count
        while a < b && (f[a] == 32 || f[a] == 34) { a += 1 }
        while b > a && (f[b - 1] == 32 || f[b - 1] == 34 || f[b - 1] == 13) { b -= 1 }
        guard b > a else { return .nan }
        // a long field (many digits, as some tools write them) is parsed from a String, not the stack
        if b - a >= 64 { return Double(String(decoding: UnsafeRawBufferPointer(rebasing: f[a..<b]), as: UTF8.self)) ?? .nan }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 65) { t -> Double in
            for q in 0..<(b - a) { t[q] = CChar(bitPattern: f[a + q]) }
            t[b - a] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(t.baseAddress!, &end)
            return end == t.baseAddress! + (b - a) ? v : .nan
        }
    }
}
