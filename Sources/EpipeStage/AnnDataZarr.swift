import Foundation
import Dispatch
import CDeflate
import EpipeCore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// An AnnData store in zarr v2 format (what `anndata.read_zarr` reads), following anndata's
/// "On-disk format" (anndata 0.8+ element encodings) and the zarr v2 storage specification:
///
///     .zgroup .zattrs .zmetadata   root: encoding-type "anndata", encoding-version "0.1.0"
///     X/                           n x d "<f4" array (encoding-type "array", 0.2.0), chunked by rows
///     obs/                         dataframe 0.2.0: _index "_index", column-order [names]
///       _index/                    string-array 0.2.0 ("|O", filters [vlen-utf8])
///       <float column>/            "<f8" array;  <int column>/ "<i8" array
///       <categorical column>/      group, categorical 0.2.0, ordered false:
///         codes/ ("|i1", "<i2" or "<i4" as pandas picks by category count)  categories/ (string-array)
///       <string column>/           string-array
///     var/                         dataframe 0.2.0 with _index = the marker names, no columns
///     obsm/spatial/                n x 2 "<f8" array (when given); obsm is a dict 0.1.0
///     uns/ layers/ obsp/ varm/ varp/   empty groups, encoding-type "dict", encoding-version "0.1.0"
///
/// Arrays: compressor {"id": "zlib", "level": 4} (libdeflate's zlib stream, which numcodecs'
/// Zlib decodes), order "C", dimension_separator ".", chunk keys "i" (1-d) or "i.0" (2-d);
/// chunks hold about 1 MiB (`chunkBytes`) of rows, the last one padded with the fill value to
/// the full chunk shape as zarr v2 requires. Strings are numcodecs' vlen-utf8: a little-endian
/// uint32 item count, then per item a uint32 byte length and its UTF-8 bytes. `.zmetadata` holds
/// the consolidated metadata (zarr_consolidated_format 1), as anndata writes it.
///
/// Categorical columns: categories are the distinct values sorted ascending (numerically when
/// every value is an integer, e.g. cluster ids, else by Unicode scalar order, as pandas sorts
/// strings), codes the index of each value.
///
/// The store is written under a temporary sibling folder (`.<name>.tmp-<pid>-<random>`), synced,
/// then renamed into place; an existing store at `dir` is replaced only then (an atomic swap
/// where the system has renameat2(RENAME_EXCHANGE), else two renames) and then removed. An
/// existing `dir` that is neither empty nor a zarr group is left alone (an error). Memory: the
/// inputs plus about two chunks per core while compressing.
public enum AnnDataZarr {
    public enum Column: Sendable {
        case float(String, [Double])
        case int(String, [Int])
        case categorical(String, [String])
        case string(String, [String])

        public var name: String {
            switch self {
            case .float(let s, _), .int(let s, _), .categorical(let s, _), .string(let s, _): return s
            }
        }
        var count: Int {
            switch self {
            case .float(_, let v): return v.count
            case .int(_, let v): return v.count
            case .categorical(_, let v), .string(_, let v): return v.count
            }
        }
    }

    /// Writes the store (see the type comment). X is row-major n x d; spatial, when given, n x 2
    /// row-major (x, y per cell).
    public static func write(to dir: URL, X: [Float], n: Int, d: Int, varNames: [String], obsIndex: [String],
                             obs: [Column], spatial: [Double]?, chunkBytes: Int = 1 << 20) throws {
        let path = dir.standardizedFileURL.path
        guard n >= 0, d >= 0, X.count == n * d else { throw EpipeError.badInput("AnnData: X has \(X.count) values, expected \(n) x \(d)") }
        guard varNames.count == d else { throw EpipeError.badInput("AnnData: \(varNames.count) var names for \(d) columns") }
        guard obsIndex.count == n else { throw EpipeError.badInput("AnnData: \(obsIndex.count) obs names for \(n) cells") }
        if let s = spatial, s.count != n * 2 { throw EpipeError.badInput("AnnData: spatial has \(s.count) values, expected \(n) x 2") }
        var seen = Set<String>()
        for c in obs {
            let name = c.name
            guard !name.isEmpty, !name.contains("/"), !name.hasPrefix("."), !name.contains("\0"), name != "_index" else {
                throw EpipeError.badInput("AnnData: obs column name \"\(name)\" cannot be stored (empty, \"_index\", starts with \".\" or contains \"/\")")
            }
            guard seen.insert(name).inserted else { throw EpipeError.badInput("AnnData: obs column \"\(name)\" given twice") }
            guard c.count == n else { throw EpipeError.badInput("AnnData: obs column \"\(name)\" has \(c.count) values for \(n) cells") }
        }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: path, isDirectory: &isDir)
        if exists {
            let entries = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            guard isDir.boolValue, entries.isEmpty || entries.contains(".zgroup") else {
                throw EpipeError.badInput("\(path): exists and is not a zarr store; refusing to replace it (remove it or choose another path)")
            }
        }
        let parent = (path as NSString).deletingLastPathComponent
        try fm.createDirectory(atPath: parent.isEmpty ? "." : parent, withIntermediateDirectories: true)
        let tmp = AtomicFile.temporaryPath(for: path)
        TempFiles.created(tmp)
        defer { TempFiles.finished(tmp) }
        do {
            let w = Writer(root: tmp, chunkBytes: max(64, chunkBytes))
            try w.build(X: X, n: n, d: d, varNames: varNames, obsIndex: obsIndex, obs: obs, spatial: spatial)
            try commit(tmp: tmp, to: path, replacing: exists)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    /// Moves the finished store at `tmp` to `path`, replacing what is there.
    static func commit(tmp: String, to path: String, replacing: Bool) throws {
        let fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { if let f = glibc.syncfs { _ = f(fd) } else { sync() }; close(fd) }
        Fault.point("temp-written")
        defer { Fault.point("renamed") }
        func fail(_ what: String, _ e: Int32) -> Error {
            EpipeError.failed("\(path): cannot \(what) (\(String(cString: strerror(e)))); the new store is at \(tmp)")
        }
        if !replacing {
            guard rename(tmp, path) == 0 else { throw fail("rename the new store into place", errno) }
        } else if let swap = glibc.renameat2, swap(AT_FDCWD, tmp, AT_FDCWD, path, 2 /* RENAME_EXCHANGE */) == 0 {
            try? FileManager.default.removeItem(atPath: tmp)   // now the old store
        } else {
            let old = AtomicFile.temporaryPath(for: path).replacingOccurrences(of: ".tmp-", with: ".old-")
            guard rename(path, old) == 0 else { throw fail("move the old store aside", errno) }
            guard rename(tmp, path) == 0 else {
                let e = errno
                _ = rename(old, path)
                throw fail("rename the new store into place", e)
            }
            try? FileManager.default.removeItem(atPath: old)
        }
        AtomicFile.syncDirectory(of: path)
    }

    // MARK: - JSON (EpipeCore's JSONValue, written with sorted keys as every epipe JSON file)

    static func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(Dictionary(pairs, uniquingKeysWith: { $1 })) }
    static func encoded(_ v: JSONValue) throws -> [UInt8] { Array(try JSON.encode(v)) }

    // MARK: - Writer

    final class Writer {
        let root: String
        let chunkBytes: Int
        let level: Int32 = 4
        /// Consolidated metadata: key (e.g. "obs/.zattrs") -> value.
        var meta: [(String, JSONValue)] = []

        init(root: String, chunkBytes: Int) { self.root = root; self.chunkBytes = chunkBytes }

        func build(X: [Float], n: Int, d: Int, varNames: [String], obsIndex: [String], obs: [Column], spatial: [Double]?) throws {
            try group("", attrs: [("encoding-type", .string("anndata")), ("encoding-version", .string("0.1.0"))])
            // X
            try numeric("X", rows: n, cols: d, dtype: "<f4", itemBytes: 4, float: true, attrs: arrayAttrs) { lo, hi, out in
                X.withUnsafeBytes { src in
                    out.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(lo * d * 4)..<(hi * d * 4)]))
                }
            }
            // obs
            try group("obs", attrs: [
                ("_index", .string("_index")),
                ("column-order", .array(obs.map { .string($0.name) })),
                ("encoding-type", .string("dataframe")), ("encoding-version", .string("0.2.0")),
            ])
            try strings("obs/_index", obsIndex)
            for c in obs {
                let p = "obs/" + c.name
                switch c {
                case .float(_, let v):
                    try numeric(p, rows: n, cols: nil, dtype: "<f8", itemBytes: 8, float: true, attrs: arrayAttrs) { lo, hi, out in
                        v.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[(lo * 8)..<(hi * 8)])) }
                    }
                case .int(_, let v):
                    try numeric(p, rows: n, cols: nil, dtype: "<i8", itemBytes: 8, float: false, attrs: arrayAttrs) { lo, hi, out in
                        for i in lo..<hi { out.storeBytes(of: Int64(v[i]).littleEndian, toByteOffset: (i - lo) * 8, as: Int64.self) }
                    }
                case .string(_, let v):
                    try strings(p, v)
                case .categorical(_, let v):
                    try categorical(p, v)
                }
            }
            // var
            try group("var", attrs: [
                ("_index", .string("_index")), ("column-order", .array([])),
                ("encoding-type", .string("dataframe")), ("encoding-version", .string("0.2.0")),
            ])
            try strings("var/_index", varNames)
            // obsm and the empty groups
            try group("obsm", attrs: dictAttrs)
            if let s = spatial {
                try numeric("obsm/spatial", rows: n, cols: 2, dtype: "<f8", itemBytes: 8, float: true, attrs: arrayAttrs) { lo, hi, out in
                    s.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[(lo * 16)..<(hi * 16)])) }
                }
            }
            for g in ["layers", "obsp", "uns", "varm", "varp"] { try group(g, attrs: dictAttrs) }
            // consolidated metadata
            let cons = AnnDataZarr.object([("metadata", AnnDataZarr.object(meta)), ("zarr_consolidated_format", .number(1))])
            try file(".zmetadata", try AnnDataZarr.encoded(cons))
        }

        let arrayAttrs: [(String, JSONValue)] = [("encoding-type", .string("array")), ("encoding-version", .string("0.2.0"))]
        let dictAttrs: [(String, JSONValue)] = [("encoding-type", .string("dict")), ("encoding-version", .string("0.1.0"))]

        func full(_ p: String) -> String { p.isEmpty ? root : root + "/" + p }
        func key(_ p: String, _ k: String) -> String { p.isEmpty ? k : p + "/" + k }

        func file(_ rel: String, _ bytes: [UInt8]) throws {
            let e = bytes.withUnsafeBytes { AnnDataZarr.writeFile(root + "/" + rel, $0) }
            if e != 0 { throw EpipeError.failed("\(root)/\(rel): write failed (\(String(cString: strerror(e)))); check free space") }
        }

        func dir(_ p: String) throws {
            try FileManager.default.createDirectory(atPath: full(p), withIntermediateDirectories: true)
        }

        func group(_ p: String, attrs: [(String, JSONValue)]) throws {
            try dir(p)
            let g = AnnDataZarr.object([("zarr_format", .number(2))]), a = AnnDataZarr.object(attrs)
            try file(key(p, ".zgroup"), try AnnDataZarr.encoded(g))
            try file(key(p, ".zattrs"), try AnnDataZarr.encoded(a))
            meta.append((key(p, ".zgroup"), g)); meta.append((key(p, ".zattrs"), a))
        }

        func arrayMeta(_ p: String, shape: [Int], chunks: [Int], dtype: String, fill: JSONValue, filters: JSONValue, attrs: [(String, JSONValue)]) throws {
            try dir(p)
            let z = AnnDataZarr.object([
                ("chunks", .array(chunks.map { .number(Double($0)) })),
                ("compressor", AnnDataZarr.object([("id", .string("zlib")), ("level", .number(Double(level)))])),
                ("dimension_separator", .string(".")),
                ("dtype", .string(dtype)),
                ("fill_value", fill),
                ("filters", filters),
                ("order", .string("C")),
                ("shape", .array(shape.map { .number(Double($0)) })),
                ("zarr_format", .number(2)),
            ])
            let a = AnnDataZarr.object(attrs)
            try file(key(p, ".zarray"), try AnnDataZarr.encoded(z))
            try file(key(p, ".zattrs"), try AnnDataZarr.encoded(a))
            meta.append((key(p, ".zarray"), z)); meta.append((key(p, ".zattrs"), a))
        }

        /// A numeric array of `rows` (x `cols` when 2-d), chunked by rows; `fill(lo, hi, out)`
        /// writes rows lo..<hi at the start of `out` (the rest of the chunk stays zero).
        func numeric(_ p: String, rows: Int, cols: Int?, dtype: String, itemBytes: Int, float: Bool, attrs: [(String, JSONValue)],
                     fill: @escaping @Sendable (Int, Int, UnsafeMutableRawBufferPointer) -> Void) throws {
            let rowBytes = itemBytes * max(cols ?? 1, 1)
            let chunkRows = max(1, min(max(rows, 1), chunkBytes / rowBytes))
            let shape = cols.map { [rows, $0] } ?? [rows]
            let chunks = cols.map { [chunkRows, max($0, 1)] } ?? [chunkRows]
            try arrayMeta(p, shape: shape, chunks: chunks, dtype: dtype, fill: float ? .number(0) : .number(0), filters: .null, attrs: attrs)
            guard rows > 0, (cols ?? 1) > 0 else { return }
            let count = (rows + chunkRows - 1) / chunkRows
            let suffix = cols == nil ? "" : ".0"
            try chunked(p, count: count, name: { "\($0)" + suffix }) { c in
                let lo = c * chunkRows, hi = min(rows, lo + chunkRows)
                var raw = [UInt8](repeating: 0, count: chunkRows * rowBytes)
                raw.withUnsafeMutableBytes { fill(lo, hi, $0) }
                return raw
            }
        }

        /// A string-array (vlen-utf8), chunked by about `chunkBytes` of text.
        func strings(_ p: String, _ v: [String], attrs: [(String, JSONValue)]? = nil) throws {
            let n = v.count
            var total = 0
            for s in v.prefix(10_000) { total += s.utf8.count + 4 }
            let avg = max(8, total / max(1, min(n, 10_000)))
            let chunkItems = max(1, min(max(n, 1), chunkBytes / avg))
            try arrayMeta(p, shape: [n], chunks: [chunkItems], dtype: "|O", fill: .string(""), filters: .array([AnnDataZarr.object([("id", .string("vlen-utf8"))])]),
                          attrs: attrs ?? [("encoding-type", .string("string-array")), ("encoding-version", .string("0.2.0"))])
            guard n > 0 else { return }
            let count = (n + chunkItems - 1) / chunkItems
            try chunked(p, count: count, name: { "\($0)" }) { c in
                let lo = c * chunkItems, hi = min(n, lo + chunkItems)
                var raw: [UInt8] = []
                raw.reserveCapacity(4 + (hi - lo) * (avg + 4))
                func u32(_ x: Int) { let u = UInt32(x); raw += [UInt8(u & 0xff), UInt8(u >> 8 & 0xff), UInt8(u >> 16 & 0xff), UInt8(u >> 24)] }
                u32(chunkItems)
                for i in lo..<hi { var s = v[i]; s.withUTF8 { b in u32(b.count); raw.append(contentsOf: b) } }
                for _ in hi..<(lo + chunkItems) { u32(0) }   // the edge chunk padded with "" (the fill value)
                return raw
            }
        }

        func categorical(_ p: String, _ v: [String]) throws {
            var distinct = Array(Set(v))
            let ints = distinct.compactMap { Int($0) }
            if ints.count == distinct.count {
                distinct.sort { Int($0)! < Int($1)! }
            } else {
                distinct.sort { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            }
            var code: [String: Int] = [:]
            for (i, s) in distinct.enumerated() { code[s] = i }
            let codes = v.map { code[$0]! }
            try group(p, attrs: [("encoding-type", .string("categorical")), ("encoding-version", .string("0.2.0")), ("ordered", .bool(false))])
            try strings(p + "/categories", distinct)
            // pandas' code dtype: int8 below 127 categories, int16 below 32767, else int32
            let (dtype, bytes) = distinct.count < 127 ? ("|i1", 1) : distinct.count < 32767 ? ("<i2", 2) : ("<i4", 4)
            let n = v.count
            try numeric(p + "/codes", rows: n, cols: nil, dtype: dtype, itemBytes: bytes, float: false, attrs: arrayAttrs) { lo, hi, out in
                for i in lo..<hi {
                    switch bytes {
                    case 1: out.storeBytes(of: Int8(codes[i]), toByteOffset: i - lo, as: Int8.self)
                    case 2: out.storeBytes(of: Int16(codes[i]).littleEndian, toByteOffset: (i - lo) * 2, as: Int16.self)
                    default: out.storeBytes(of: Int32(codes[i]).littleEndian, toByteOffset: (i - lo) * 4, as: Int32.self)
                    }
                }
            }
        }

        /// Encodes, compresses (zlib) and writes chunks 0..<count of array `p`, in parallel (each
        /// worker holds one raw and one compressed chunk).
        func chunked(_ p: String, count: Int, name: (Int) -> String, encode: @escaping @Sendable (Int) -> [UInt8]) throws {
            let paths = (0..<count).map { full(p) + "/" + name($0) }
            var status = [Int32](repeating: 0, count: count)
            let level = self.level
            status.withUnsafeMutableBufferPointer { sb in
                let S = SharedPointer(sb.baseAddress!), P = UnsafeShared(paths)
                DispatchQueue.concurrentPerform(iterations: count) { c in
                    let raw = encode(c)
                    guard let comp = libdeflate_alloc_compressor(level) else { S[c] = ENOMEM; return }
                    defer { libdeflate_free_compressor(comp) }
                    let bound = libdeflate_zlib_compress_bound(comp, raw.count)
                    var out = [UInt8](repeating: 0, count: bound)
                    let len = raw.withUnsafeBytes { r in
                        out.withUnsafeMutableBytes { o in libdeflate_zlib_compress(comp, r.baseAddress, r.count, o.baseAddress, bound) }
                    }
                    guard len > 0 else { S[c] = EIO; return }
                    S[c] = out.withUnsafeBytes { AnnDataZarr.writeFile(P.value[c], UnsafeRawBufferPointer(rebasing: $0[0..<len])) }
                }
            }
            if let c = status.firstIndex(where: { $0 != 0 }) {
                throw EpipeError.failed("\(paths[c]): write failed (\(String(cString: strerror(status[c])))); check free space")
            }
        }
    }

    /// syncfs and renameat2 (GNU extensions the Glibc module does not declare), looked up at run time.
    struct GNU: @unchecked Sendable {
        typealias SyncFS = @convention(c) (Int32) -> Int32
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        let syncfs: SyncFS?
        let renameat2: RenameAt2?
        init() {
            let h = dlopen(nil, RTLD_NOW)
            syncfs = dlsym(h, "syncfs").map { unsafeBitCast($0, to: SyncFS.self) }
            renameat2 = dlsym(h, "renameat2").map { unsafeBitCast($0, to: RenameAt2.self) }
        }
    }
    static let glibc = GNU()

    /// Creates (truncating) and writes a file; 0 or the errno.
    static func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return errno }
        let e = FileIO.writeAll(fd, bytes)
        let c = close(fd) == 0 ? 0 : errno
        Fault.point("output-chunk")
        return e != 0 ? e : c
    }
}
