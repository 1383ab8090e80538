import Foundation
import Crypto
import EpipeCore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// How to reach an S3-compatible server and how to move bytes to it.
public struct S3Config: Sendable {
    /// `--endpoint`; nil: `https://s3.<region>.amazonaws.com`. Requests are path-style
    /// (`endpoint/bucket/key`), which AWS, MinIO, SeaweedFS and Ceph all accept.
    public var endpoint: String?
    /// `--region` (signs requests; AWS needs the bucket's region, most others take any).
    public var region: String
    public var credentials: S3Credentials
    /// Bytes per part of a multipart upload and per ranged GET (at least 5 MiB, S3's minimum
    /// part; raised for files that would need more than 10,000 parts). Files smaller than this
    /// go in one PutObject.
    public var partSize: Int
    /// Parts (or ranges) in flight at once. Memory held: about `parallel × partSize`.
    public var parallel: Int
    /// Attempts per request (1 = no retry).
    public var retries: Int
    /// Backoff before retry n is uniform in [0, min(backoffCap, backoffBase × 2^(n-1))] seconds.
    public var backoffBase: Double
    public var backoffCap: Double
    /// Limit on request body bytes sent per second, shared by all threads; nil: no limit.
    public var bytesPerSecond: Double?
    /// Seconds a request may stay idle before it counts as a failed (retried) attempt.
    public var timeout: Double
    /// Fault injection for tests.
    var hooks = S3Hooks()

    public init(credentials: S3Credentials, endpoint: String? = nil, region: String = "us-east-1", partSize: Int = 64 << 20,
                parallel: Int = 4, retries: Int = 6, backoffBase: Double = 0.2, backoffCap: Double = 10,
                bytesPerSecond: Double? = nil, timeout: Double = 60) {
        self.credentials = credentials; self.endpoint = endpoint; self.region = region
        self.partSize = partSize; self.parallel = parallel; self.retries = retries
        self.backoffBase = backoffBase; self.backoffCap = backoffCap; self.bytesPerSecond = bytesPerSecond; self.timeout = timeout
    }

    /// The endpoint requests go to.
    public var resolvedEndpoint: String {
        if let e = endpoint, !e.isEmpty { return e }
        return "https://s3.\(region).amazonaws.com"
    }
}

/// A bucket (and key prefix) on an S3-compatible server as an `ObjectStore`.
///
/// What it promises:
/// - `put` returns only after a HEAD showed the object with the source's size and its SHA-256
///   in the metadata (`x-amz-meta-sha256`); every body goes with `Content-MD5`, a signed
///   `x-amz-content-sha256` and (where the server supports it) `x-amz-checksum-sha256`, so the
///   server refuses bytes altered in flight. Any failure throws; the source is never touched.
/// - An object already holding the same size and SHA-256 is not sent again (`sent` 0).
/// - A multipart upload cut short resumes: a record in `stateDir` (bucket, key, SHA-256 ->
///   upload id, part size) is written before the first part is sent; the next `put` of the
///   same content lists the parts the server has and sends only those whose size or ETag (the
///   MD5 of our bytes for that part) differ.
/// - Large files are read twice: once to hash (the SHA-256 names the key and goes into the
///   upload's metadata, which S3 fixes when the upload is created, before any part is sent),
///   once to send. The second read re-hashes each part and refuses to go on if the file changed
///   in between, so the metadata never describes other bytes than the object holds.
public struct S3Store: ObjectStore {
    public let base: String
    public let bucket: String
    /// Key prefix without slashes at either end ("" for the bucket's root).
    public let prefix: String
    public let config: S3Config
    /// Resume records of multipart uploads (a local folder, created when first needed).
    public let stateDir: String
    public let client: S3Client
    let bucketChecked = Flag()
    let prepared = Prepared()
    let buffers = BufferPool()

    /// Part buffers, reused across parts and files (at most `parallel` of one size live at once):
    /// a fresh 64 MiB buffer a part would be mapped, zeroed and faulted in page by page each time,
    /// which measured as most of an upload's system time.
    final class BufferPool: @unchecked Sendable {
        private let lock = NSLock()
        private var free: [Int: [UnsafeMutableRawPointer]] = [:]
        func take(_ size: Int) -> UnsafeMutableRawPointer {
            lock.lock(); defer { lock.unlock() }
            return free[size]?.popLast() ?? UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        }
        func give(_ b: UnsafeMutableRawPointer, _ size: Int) { lock.lock(); free[size, default: []].append(b); lock.unlock() }
        deinit { for (_, l) in free { for b in l { b.deallocate() } } }
    }

    /// Digests of files hashed ahead (`prepare`), by path, size and mtime; each taken once.
    final class Prepared: @unchecked Sendable {
        struct Entry { var bytes: Int64; var mtime: Date; var partSize: Int; var group: DispatchGroup; var result: (String, [Data])? }
        private let lock = NSLock()
        private var entries: [String: Entry] = [:]
        func start(_ path: String, bytes: Int64, mtime: Date, partSize: Int) -> DispatchGroup? {
            lock.lock(); defer { lock.unlock() }
            guard entries[path] == nil, entries.count < 4 else { return nil }
            let g = DispatchGroup(); g.enter()
            entries[path] = Entry(bytes: bytes, mtime: mtime, partSize: partSize, group: g, result: nil)
            return g
        }
        func finish(_ path: String, _ r: (String, [Data])?) {
            lock.lock(); let g = entries[path]?.group; entries[path]?.result = r; lock.unlock()
            g?.leave()
        }
        /// The digests of `path` if it was prepared with this size, mtime and part size (waiting
        /// for a hashing still under way); nil otherwise.
        func take(_ path: String, bytes: Int64, mtime: Date, partSize: Int) -> (String, [Data])? {
            lock.lock(); let e = entries[path]; lock.unlock()
            guard let e, e.bytes == bytes, e.mtime == mtime, e.partSize == partSize else { return nil }
            e.group.wait()
            lock.lock(); defer { lock.unlock() }
            let r = entries[path]?.result
            entries[path] = nil
            return r
        }
    }

    /// Hashes a file the caller will put next (a multipart-sized one), on another thread, so its
    /// pass 1 overlaps the sending of the file before: the put then finds the digests ready. A
    /// file changed in between is caught by size and mtime here, and by the server, which checks
    /// every part against the digest sent with it.
    public func prepare(source: String) {
        guard let size = Files.size(source), let mtime = Files.mtime(source) else { return }
        let ps = partSize(for: size)
        guard size >= Int64(config.partSize), let g = prepared.start(source, bytes: size, mtime: mtime, partSize: ps) else { return }
        _ = g
        let me = self
        DispatchQueue.global(qos: .utility).async {
            let fd = open(source, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { me.prepared.finish(source, nil); return }
            defer { close(fd) }
            let r = try? me.hashPass(fd: fd, source: source, plan: Plan(size: size, partSize: ps)) { _ in }
            me.prepared.finish(source, r)
        }
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var done: Bool {
            get { lock.lock(); defer { lock.unlock() }; return value }
            set { lock.lock(); value = newValue; lock.unlock() }
        }
    }

    /// `uri`: `s3://bucket` or `s3://bucket/prefix`. Throws `.badInput` for a malformed URI or
    /// endpoint (nothing is sent until a method is called).
    public init(uri: String, config: S3Config, stateDir: String) throws {
        let (b, p) = try S3Store.parse(uri: uri)
        bucket = b; prefix = p
        base = "s3://" + b + (p.isEmpty ? "" : "/" + p)
        var c = config
        c.partSize = max(c.partSize, S3Store.minPart)
        c.parallel = max(1, c.parallel)
        self.config = c
        self.stateDir = stateDir
        client = try S3Client(config: c)
    }

    static let minPart = 5 << 20
    static let maxParts = 10_000

    /// Splits `s3://bucket/prefix` (prefix optional, trailing slashes dropped). Refuses, with one
    /// line, anything but the s3 scheme, a bucket name S3 would refuse, and empty, `.` or `..`
    /// prefix segments.
    public static func parse(uri: String) throws -> (bucket: String, prefix: String) {
        guard uri.hasPrefix("s3://") else { throw EpipeError.badInput("--to \(uri): not an s3:// URI (expected s3://bucket or s3://bucket/prefix)") }
        var rest = String(uri.dropFirst(5))
        while rest.hasSuffix("/") { rest.removeLast() }
        let bucket: String, prefix: String
        if let slash = rest.firstIndex(of: "/") { bucket = String(rest[..<slash]); prefix = String(rest[rest.index(after: slash)...]) } else { bucket = rest; prefix = "" }
        guard !bucket.isEmpty else { throw EpipeError.badInput("--to \(uri): no bucket name (expected s3://bucket or s3://bucket/prefix)") }
        let okChars = bucket.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "-" || $0 == "_") }
        guard (3...63).contains(bucket.count), okChars, bucket.first!.isLetter || bucket.first!.isNumber, bucket.last!.isLetter || bucket.last!.isNumber else {
            throw EpipeError.badInput("--to \(uri): \"\(bucket)\" is not a valid bucket name (3 to 63 letters, digits, '.', '-', starting and ending with a letter or digit)")
        }
        if !prefix.isEmpty {
            for seg in prefix.split(separator: "/", omittingEmptySubsequences: false) {
                if seg.isEmpty || seg == "." || seg == ".." {
                    throw EpipeError.badInput("--to \(uri): the prefix has an empty, '.' or '..' segment")
                }
            }
            if prefix.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) {
                throw EpipeError.badInput("--to \(uri): the prefix contains a control character")
            }
        }
        return (bucket, prefix)
    }

    /// The object key of store key `key` (prefix + "/" + key).
    public func objectKey(_ key: String) -> String { prefix.isEmpty ? key : prefix + "/" + key }
    /// `s3://bucket/prefix/key`.
    public func uri(_ key: String) -> String { base + "/" + key }

    /// Fails early (one line) when the bucket is missing or the credentials are refused.
    public func check() throws { try client.headBucket(bucket) }

    /// Before the first put of this store: a missing bucket is an error, also on servers that
    /// would create it on the first PutObject (SeaweedFS does, for an admin identity), so a
    /// mistyped --to never fills a new bucket. Credentials refused are an error; AccessDenied
    /// alone is not (a policy may allow PutObject without ListBucket, which HeadBucket needs).
    func ensureBucket() throws {
        if bucketChecked.done { return }
        try client.headBucket(bucket, allowAccessDenied: true)
        bucketChecked.done = true
    }

    func validate(_ key: String) throws {
        guard !key.isEmpty else { throw EpipeError.badInput("\(base): empty store key") }
        for part in key.split(separator: "/", omittingEmptySubsequences: false) { try Names.validateName(String(part), what: "store key", path: base) }
    }

    func matches(_ info: S3ObjectInfo?, sha256: String, bytes: Int64) -> Bool {
        guard let i = info else { return false }
        return i.size == bytes && i.metadata["sha256"]?.lowercased() == sha256.lowercased()
    }

    // MARK: put

    /// See `ObjectStore.put` and the type's comment. Files smaller than `partSize` go in one
    /// PutObject (read into memory while hashed); larger ones in parts, `parallel` at a time.
    /// `progress(done, size)`: the hashing read covers the first half of `size`, the sending
    /// the second; it is called on the calling thread. A failed multipart put leaves its upload
    /// on the server for the next put of the same content to resume (a bucket lifecycle rule
    /// with AbortIncompleteMultipartUpload removes uploads never resumed).
    public func put(source: String, key: (String) -> String, progress: ((Int64, Int64) -> Void)?) throws -> PutResult {
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EpipeError.badInput("\(source): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG) else { throw EpipeError.badInput("\(source): not a regular file") }
        let size = Int64(st.st_size)
        try ensureBucket()
        if size < Int64(config.partSize) { return try putSmall(fd: fd, source: source, size: size, key: key, progress: progress) }
        return try putMultipart(fd: fd, source: source, size: size, key: key, progress: progress)
    }

    /// One PutObject: the file read into memory while hashing, then sent.
    func putSmall(fd: Int32, source: String, size: Int64, key: (String) -> String, progress: ((Int64, Int64) -> Void)?) throws -> PutResult {
        var body = Data(count: Int(size))
        var hasher = SHA256()
        var got = 0
        let n = Int(size)
        try body.withUnsafeMutableBytes { (p: UnsafeMutableRawBufferPointer) in
            while got < n {
                let r = read(fd, p.baseAddress! + got, min(8 << 20, n - got))
                if r < 0 { if errno == EINTR { continue }; throw EpipeError.failed("\(source): read error (\(String(cString: strerror(errno))))") }
                if r == 0 { break }
                hasher.update(bufferPointer: UnsafeRawBufferPointer(start: p.baseAddress! + got, count: r))
                got += r
                progress?(Int64(got) / 2, size)
            }
        }
        guard got == n else { throw EpipeError.failed("\(source): the file shrank while it was read (\(got) of \(n) bytes); rerun when it is complete") }
        let sha = SigV4.hex(hasher.finalize())
        let k = key(sha)
        try validate(k)
        let ok = objectKey(k)
        let result = PutResult(raw: RawRef(uri: uri(k), sha256: sha, bytes: size), key: k, sent: 0)
        if matches(try client.headObject(bucket: bucket, key: ok), sha256: sha, bytes: size) { progress?(size, size); return result }
        let counter = S3ByteCounter()
        let etag = try client.putObject(bucket: bucket, key: ok, body: body, metadata: ["sha256": sha, "source-bytes": String(size)], counter: counter)
        let md5 = SigV4.hex(Insecure.MD5.hash(data: body))
        if S3Store.isPlainMD5(etag) && etag.lowercased() != md5 {
            throw EpipeError.failed("\(uri(k)): the server stored other bytes than were sent (ETag \(etag), MD5 sent \(md5)); rerun to send again")
        }
        try verifyStored(k, sha256: sha, bytes: size)
        progress?(size, size)
        var r = result; r.sent = counter.value
        return r
    }

    func verifyStored(_ k: String, sha256: String, bytes: Int64, multipartETag: String? = nil) throws {
        guard let info = try client.headObject(bucket: bucket, key: objectKey(k)) else {
            throw EpipeError.failed("\(uri(k)): the object cannot be seen after it was stored (missing, or HEAD refused: the credentials need s3:GetObject); rerun to send it again")
        }
        guard matches(info, sha256: sha256, bytes: bytes) else {
            throw EpipeError.failed("\(uri(k)): stored object does not match the source (size \(info.size) vs \(bytes), sha256 \(info.metadata["sha256"]?.prefix(12) ?? "none") vs \(sha256.prefix(12))); rerun to send it again")
        }
        if let want = multipartETag, S3Store.isMultipartETag(info.etag), info.etag.lowercased() != want {
            throw EpipeError.failed("\(uri(k)): the server assembled other parts than were sent (ETag \(info.etag), expected \(want)); rerun to send it again")
        }
    }

    static func isPlainMD5(_ e: String) -> Bool { e.count == 32 && e.allSatisfy { $0.isHexDigit } }
    static func isMultipartETag(_ e: String) -> Bool {
        guard let dash = e.firstIndex(of: "-") else { return false }
        return isPlainMD5(String(e[..<dash])) && Int(e[e.index(after: dash)...]) != nil
    }

    /// The layout of a multipart upload: part i (1-based) covers [offset(i), offset(i) + length(i)).
    struct Plan: Sendable {
        let size: Int64, partSize: Int
        var count: Int { Int((size + Int64(partSize) - 1) / Int64(partSize)) }
        func offset(_ i: Int) -> Int64 { Int64(i - 1) * Int64(partSize) }
        func length(_ i: Int) -> Int { Int(min(Int64(partSize), size - offset(i))) }
    }

    /// The part size for `size` bytes: the configured one, raised (in MiB steps) so the file
    /// fits in 10,000 parts.
    func partSize(for size: Int64) -> Int {
        var p = Int64(config.partSize)
        let need = (size + Int64(S3Store.maxParts) - 1) / Int64(S3Store.maxParts)
        if need > p { p = ((need + (1 << 20) - 1) >> 20) << 20 }
        return Int(p)
    }

    /// Where the resume record of (bucket, object key, sha256) lives.
    func recordPath(objectKey: String, sha256: String) -> String {
        stateDir + "/s3-" + Digest.sha256(bucket + "\n" + objectKey + "\n" + sha256).prefix(32) + ".json"
    }

    struct ResumeRecord: Codable {
        var schema = ResumeRecord.schemaName
        var bucket: String
        var key: String
        var sha256: String
        var bytes: Int64
        var uploadId: String
        var partSize: Int
        var checksums: Bool
        var created: String
        static let schemaName = "epipe.s3upload/1"
    }

    func readRecord(_ path: String, objectKey: String, sha256: String, bytes: Int64) -> ResumeRecord? {
        guard Files.exists(path), let d = try? Files.read(path),
              let r = try? Schema.decode(ResumeRecord.self, expected: ResumeRecord.schemaName, from: d, path: path),
              r.bucket == bucket, r.key == objectKey, r.sha256 == sha256, r.bytes == bytes, r.partSize >= 1, !r.uploadId.isEmpty else { return nil }
        return r
    }

    func putMultipart(fd: Int32, source: String, size: Int64, key: (String) -> String, progress: ((Int64, Int64) -> Void)?) throws -> PutResult {
        // Pass 1: the whole file's SHA-256 (names the key, goes into the metadata) and each
        // part's, to check in pass 2 that the bytes sent are the bytes hashed.
        var plan = Plan(size: size, partSize: partSize(for: size))
        var sha: String, partSHA: [Data]
        if let mtime = Files.mtime(source), let ready = prepared.take(source, bytes: size, mtime: mtime, partSize: plan.partSize) {
            (sha, partSHA) = ready
            progress?(size / 2, size)
        } else {
            (sha, partSHA) = try hashPass(fd: fd, source: source, plan: plan) { progress?($0 / 2, size) }
        }
        let k = key(sha)
        try validate(k)
        let ok = objectKey(k)
        let result = PutResult(raw: RawRef(uri: uri(k), sha256: sha, bytes: size), key: k, sent: 0)
        let recPath = recordPath(objectKey: ok, sha256: sha)
        if matches(try client.headObject(bucket: bucket, key: ok), sha256: sha, bytes: size) {
            unlink(recPath)   // a record left by a put that completed but stopped before removing it
            progress?(size, size)
            return result
        }

        // Resume: our record, else (content-addressed keys only) an upload of this key on the
        // server; both are checked part by part against our bytes.
        var uploadId = "", checksums = false
        var have: [Int: S3Part] = [:]
        var seen: [S3Upload]? = nil   // the key's open uploads, once listed
        if let rec = readRecord(recPath, objectKey: ok, sha256: sha, bytes: size) {
            if let listed = try client.listParts(bucket: bucket, key: ok, uploadId: rec.uploadId) {
                uploadId = rec.uploadId; checksums = rec.checksums
                if rec.partSize != plan.partSize {
                    plan = Plan(size: size, partSize: rec.partSize)
                    (sha, partSHA) = try hashPass(fd: fd, source: source, plan: plan) { _ in }
                    guard sha == result.raw.sha256 else { throw EpipeError.failed("\(source): the file changed while it was read; rerun when it is complete") }
                }
                have = S3Store.unambiguous(listed.parts)
            } else {
                unlink(recPath)   // NoSuchUpload: completed, aborted or expired; start over
            }
        } else if ok.contains(sha) {
            if let adopted = try adopt(objectKey: ok, plan: plan, seen: &seen) {
                uploadId = adopted.uploadId; checksums = adopted.checksums; have = adopted.parts
                try writeRecord(recPath, ResumeRecord(bucket: bucket, key: ok, sha256: sha, bytes: size, uploadId: uploadId, partSize: plan.partSize, checksums: checksums, created: Time.iso(Date())))
            }
        }
        if uploadId.isEmpty {
            // Uploads of this key open before ours, with no record (and not taken over): attempts of a
            // put killed before it recorded its upload. Nothing resumes them, so they are aborted once
            // ours is recorded (else they hold their parts until a lifecycle rule removes them).
            let abandoned = seen ?? ((try? client.listMultipartUploads(bucket: bucket, prefix: ok))?.filter { $0.key == ok } ?? [])
            let created = try client.createMultipartUpload(bucket: bucket, key: ok, metadata: ["sha256": sha, "source-bytes": String(size)])
            uploadId = created.uploadId; checksums = created.checksums
            try writeRecord(recPath, ResumeRecord(bucket: bucket, key: ok, sha256: sha, bytes: size, uploadId: uploadId, partSize: plan.partSize, checksums: checksums, created: Time.iso(Date())))
            for u in abandoned where u.uploadId != uploadId { try? client.abortMultipartUpload(bucket: bucket, key: ok, uploadId: u.uploadId) }
        }

        // Pass 2: every part read at its offset and re-hashed; parts the server already holds
        // with our MD5 as ETag are skipped, the others sent, `parallel` at a time.
        let counter = S3ByteCounter()
        let ctx = PartContext(store: self, fd: fd, source: source, plan: plan, objectKey: ok, uploadId: uploadId,
                              checksums: checksums, partSHA: partSHA, have: have, counter: counter)
        var parts: [S3Part?] = Array(repeating: nil, count: plan.count + 1)
        var md5s: [Data?] = Array(repeating: nil, count: plan.count + 1)
        var done: Int64 = 0
        try WorkPool.run(count: plan.count, parallel: config.parallel, work: { i in try ctx.part(i + 1) }, done: { i, r in
            parts[i + 1] = r.part; md5s[i + 1] = r.md5
            Fault.point("output-chunk")
            done += Int64(plan.length(i + 1))
            progress?(size / 2 + done / 2, size)
        })
        let all = parts.compactMap { $0 }
        guard all.count == plan.count else { throw EpipeError.failed("\(uri(k)): \(plan.count - all.count) parts were not sent; rerun to resume") }
        // the multipart ETag (MD5 of the parts' MD5s) is checked when every part's MD5 was computed
        var concat = Data()
        for m in md5s.dropFirst() { if let m { concat.append(m) } }
        let expectedETag: String? = md5s.dropFirst().allSatisfy({ $0 != nil }) ? SigV4.hex(Insecure.MD5.hash(data: concat)) + "-\(plan.count)" : nil

        do {
            try client.completeMultipartUpload(bucket: bucket, key: ok, uploadId: uploadId, parts: all)
        } catch {
            // The upload may have completed although its answer was lost (a retry then meets
            // NoSuchUpload): the object decides.
            guard matches(try? client.headObject(bucket: bucket, key: ok), sha256: sha, bytes: size) else { throw error }
        }
        try verifyStored(k, sha256: sha, bytes: size, multipartETag: expectedETag)
        unlink(recPath)
        progress?(size, size)
        var r = result; r.sent = counter.value
        return r
    }

    func writeRecord(_ path: String, _ r: ResumeRecord) throws {
        try Files.mkdir(stateDir)
        try AtomicFile.write(JSON.encode(r), to: path)
    }

    /// An upload of `objectKey` already on the server (its resume record lost), taken over
    /// when it holds at least one part of the right size: the key names the content, so its
    /// metadata is ours, and every part is still checked against our bytes.
    /// Whether the upload wants part checksums: as ListParts says when it does; else as this
    /// code creates uploads (with SHA-256 checksums unless the server refused them). SeaweedFS
    /// lists neither the algorithm nor part checksums.
    /// `seen` gets the key's open uploads as listed.
    func adopt(objectKey ok: String, plan: Plan, seen: inout [S3Upload]?) throws -> (uploadId: String, checksums: Bool, parts: [Int: S3Part])? {
        let uploads = try client.listMultipartUploads(bucket: bucket, prefix: ok).filter { $0.key == ok }.sorted { $0.initiated > $1.initiated }
        seen = uploads
        for u in uploads {
            guard let listed = try client.listParts(bucket: bucket, key: ok, uploadId: u.uploadId) else { continue }
            let have = S3Store.unambiguous(listed.parts).filter { $0.key <= plan.count && $0.value.size == Int64(plan.length($0.key)) }
            guard !have.isEmpty else { continue }
            let checksums = listed.checksumAlgorithm.map { $0.uppercased() == "SHA256" }
                ?? (listed.parts.contains { $0.checksumSHA256 != nil } || client.checksumsEnabled)
            return (u.uploadId, checksums, have)
        }
        return nil
    }

    /// Listed parts by number, leaving out numbers listed more than once with different ETags
    /// (a part uploaded twice on a server that keeps both): which one the server would use is
    /// not known, so such a part is sent again.
    static func unambiguous(_ parts: [S3Part]) -> [Int: S3Part] {
        var by: [Int: S3Part] = [:], ambiguous = Set<Int>()
        for p in parts where p.number >= 1 {
            if let q = by[p.number], q.etag.lowercased() != p.etag.lowercased() || q.size != p.size { ambiguous.insert(p.number) }
            by[p.number] = p
        }
        for n in ambiguous { by[n] = nil }
        return by
    }

    /// Reads the file once: its SHA-256 and the SHA-256 of each part of `plan`.
    func hashPass(fd: Int32, source: String, plan: Plan, progress: (Int64) -> Void) throws -> (String, [Data]) {
        // One read of the file: this thread hashes the whole file (sequential by nature) while a
        // serial queue hashes the parts from the same buffers, a chunk behind, so pass 1 costs about
        // one hash of the file in wall time on two cores and one read.
        final class PartState: @unchecked Sendable { var h = SHA256(); var inPart = 0; var sums: [Data] = [] }
        final class Buffers: @unchecked Sendable {
            let ptrs: [UnsafeMutableRawPointer]
            init(_ n: Int, _ cap: Int) { ptrs = (0..<n).map { _ in UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 64) } }
            deinit { for p in ptrs { p.deallocate() } }
        }
        let cap = 8 << 20, nbuf = 3
        let bufs = Buffers(nbuf, cap)
        let free = DispatchSemaphore(value: nbuf)
        let queue = DispatchQueue(label: "epipe.s3.parthash")
        let st = PartState()
        let partSize = plan.partSize
        var whole = SHA256()
        var off: Int64 = 0, idx = 0
        var failure: Error? = nil
        while off < plan.size {
            free.wait()
            let buf = bufs.ptrs[idx % nbuf]; idx += 1
            let want = Int(min(Int64(cap), plan.size - off))
            var n = 0
            while true {
                n = pread(fd, buf, want, off_t(off))
                if n < 0 && errno == EINTR { continue }
                break
            }
            if n < 0 { failure = EpipeError.failed("\(source): read error (\(String(cString: strerror(errno))))"); free.signal(); break }
            if n == 0 { failure = EpipeError.failed("\(source): the file shrank while it was read; rerun when it is complete"); free.signal(); break }
            whole.update(bufferPointer: UnsafeRawBufferPointer(start: buf, count: n))
            let count = n, slot = (idx - 1) % nbuf
            queue.async {
                let buf = bufs.ptrs[slot]
                var used = 0
                while used < count {
                    let take = min(count - used, partSize - st.inPart)
                    st.h.update(bufferPointer: UnsafeRawBufferPointer(start: buf + used, count: take))
                    used += take; st.inPart += take
                    if st.inPart == partSize { st.sums.append(Data(st.h.finalize())); st.h = SHA256(); st.inPart = 0 }
                }
                free.signal()
            }
            off += Int64(n)
            progress(off)
        }
        queue.sync {}
        withExtendedLifetime(bufs) {}
        if let failure { throw failure }
        if st.inPart > 0 { st.sums.append(Data(st.h.finalize())) }
        return (SigV4.hex(whole.finalize()), st.sums)
    }

    /// What the part workers share (read-only, plus the counter).
    final class PartContext: @unchecked Sendable {
        let store: S3Store, fd: Int32, source: String, plan: Plan, objectKey: String, uploadId: String, checksums: Bool
        let partSHA: [Data], have: [Int: S3Part], counter: S3ByteCounter
        init(store: S3Store, fd: Int32, source: String, plan: Plan, objectKey: String, uploadId: String, checksums: Bool,
             partSHA: [Data], have: [Int: S3Part], counter: S3ByteCounter) {
            self.store = store; self.fd = fd; self.source = source; self.plan = plan; self.objectKey = objectKey; self.uploadId = uploadId
            self.checksums = checksums; self.partSHA = partSHA; self.have = have; self.counter = counter
        }
        func takeBuffer() -> UnsafeMutableRawPointer { store.buffers.take(plan.partSize) }
        func giveBack(_ b: UnsafeMutableRawPointer) { store.buffers.give(b, plan.partSize) }

        /// Part `n`: read; skipped when the server has it (its ETag is our MD5); else sent with the
        /// SHA-256 pass 1 computed as its checksum and signed payload hash, so the server itself
        /// refuses a part whose bytes are not the ones pass 1 read (the file changed since, or the
        /// bytes were damaged on the way). Hashing here again is then needed only to say which of the
        /// two happened, or where the server checks no SHA-256 (then the ETag, an MD5, is checked).
        func part(_ n: Int) throws -> (part: S3Part, md5: Data?) {
            let len = plan.length(n)
            let buffer = takeBuffer()
            defer { giveBack(buffer) }
            var got = 0
            while got < len {
                let r = pread(fd, buffer + got, len - got, off_t(plan.offset(n) + Int64(got)))
                if r < 0 { if errno == EINTR { continue }; throw EpipeError.failed("\(source): read error (\(String(cString: strerror(errno))))") }
                if r == 0 { break }
                got += r
            }
            // the buffer goes back to the pool when this returns; nothing keeps `body` beyond the request
            let body = Data(bytesNoCopy: buffer, count: got, deallocator: .none)
            let sha = partSHA[n - 1]
            func changed() -> EpipeError {
                EpipeError.failed("\(source): the file changed while it was being sent (part \(n)); nothing was completed, rerun when it is stable")
            }
            guard got == len else { throw changed() }
            if let p = have[n], p.size == Int64(len) {
                let md5 = Data(Insecure.MD5.hash(data: body))
                if p.etag.lowercased() == SigV4.hex(md5), Data(SHA256.hash(data: body)) == sha {
                    return (S3Part(number: n, etag: p.etag, size: p.size, checksumSHA256: checksums ? sha.base64EncodedString() : nil), md5)
                }
            }
            let plain = !(checksums && store.client.checksumsEnabled)
            if plain { guard Data(SHA256.hash(data: body)) == sha else { throw changed() } }
            try store.config.hooks.beforePart?(n)
            var sent: S3Part
            do {
                sent = try store.client.uploadPart(bucket: store.bucket, key: objectKey, uploadId: uploadId, number: n, body: body,
                                                   checksum: checksums, sha256: sha, counter: counter)
            } catch {
                if Data(SHA256.hash(data: body)) != sha { throw changed() }
                throw error
            }
            var md5: Data? = nil
            if plain || !store.client.checksumsEnabled {
                let m = Data(Insecure.MD5.hash(data: body)); md5 = m
                if S3Store.isPlainMD5(sent.etag) && sent.etag.lowercased() != SigV4.hex(m) {
                    throw EpipeError.failed("\(store.uri(objectKey)): part \(n) was stored with other bytes than were sent (ETag \(sent.etag)); rerun to resume")
                }
                if sent.etag.isEmpty { sent.etag = SigV4.hex(m) }
            }
            return (sent, md5)
        }
    }

    // MARK: verify, fetch, delete

    /// HEAD only: true when the object exists with `bytes` bytes and `x-amz-meta-sha256` equal
    /// to `sha256` (false when it is missing or differs).
    public func verify(key: String, sha256: String, bytes: Int64) throws -> Bool {
        try validate(key)
        return matches(try client.headObject(bucket: bucket, key: objectKey(key)), sha256: sha256, bytes: bytes)
    }

    /// Ranged GETs of `partSize` bytes, `parallel` at a time, each written at its offset into
    /// `path.partial` (with `If-Match` on the ETag, so an object replaced meanwhile is refused);
    /// then the file is hashed and compared with `sha256` (when given) and with the object's
    /// recorded SHA-256 (when it has one), and renamed into place. A mismatch removes it.
    public func fetch(key: String, to path: String, sha256: String?, progress: ((Int64, Int64) -> Void)?) throws {
        try validate(key)
        let ok = objectKey(key)
        guard let info = try client.headObject(bucket: bucket, key: ok) else {
            throw EpipeError.badInput("\(uri(key)): no such object")
        }
        let size = info.size
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try Files.mkdir(dir) }
        let partial = path + ".partial"
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EpipeError.failed("\(partial): cannot create (\(String(cString: strerror(errno)))); check permissions and free space") }
        var closed = false
        defer { if !closed { close(fd) } }
        do {
            let plan = Plan(size: size, partSize: config.partSize)
            let ctx = FetchContext(store: self, fd: fd, partial: partial, plan: plan, objectKey: ok, etag: info.etag)
            var done: Int64 = 0
            progress?(0, size)
            try WorkPool.run(count: size == 0 ? 0 : plan.count, parallel: config.parallel, work: { i in try ctx.range(i + 1) }, done: { i, _ in
                done += Int64(plan.length(i + 1))
                progress?(done, size)
            })
            guard fsync(fd) == 0 else { throw EpipeError.failed("\(partial): fsync failed (\(String(cString: strerror(errno))))") }
            close(fd); closed = true
            let got = try Digest.sha256(file: partial)
            guard got.bytes == size else { throw EpipeError.failed("\(uri(key)): received \(got.bytes) bytes instead of \(size); removed \(partial), rerun to fetch again") }
            if let want = sha256, got.hex != want.lowercased() {
                throw EpipeError.failed("\(uri(key)): checksum of what arrived (\(got.hex.prefix(12))) differs from the expected \(want.prefix(12)); removed \(partial), rerun to fetch again")
            }
            if let recorded = info.metadata["sha256"], got.hex != recorded.lowercased() {
                throw EpipeError.failed("\(uri(key)): checksum of what arrived (\(got.hex.prefix(12))) differs from the object's recorded sha256 (\(recorded.prefix(12))); removed \(partial), rerun to fetch again")
            }
            try AtomicFile.commit(temporary: partial, to: path)
        } catch {
            unlink(partial)
            throw error
        }
    }

    final class FetchContext: @unchecked Sendable {
        let store: S3Store, fd: Int32, partial: String, plan: Plan, objectKey: String, etag: String
        init(store: S3Store, fd: Int32, partial: String, plan: Plan, objectKey: String, etag: String) {
            self.store = store; self.fd = fd; self.partial = partial; self.plan = plan; self.objectKey = objectKey; self.etag = etag
        }
        func range(_ n: Int) throws {
            let a = plan.offset(n), len = plan.length(n)
            let d = try store.client.getObject(bucket: store.bucket, key: objectKey, range: a...(a + Int64(len) - 1), ifMatch: etag.isEmpty ? nil : etag)
            let err = d.withUnsafeBytes { FileIO.writeAll(fd, $0, offset: a) }
            if err != 0 { throw EpipeError.failed("\(partial): write error (\(String(cString: strerror(err)))); check free space") }
        }
    }

    /// DeleteObject (no error when it is not there).
    public func delete(key: String) throws {
        try validate(key)
        try client.deleteObject(bucket: bucket, key: objectKey(key))
    }
}

/// Runs `work(0..<count)` on `parallel` threads of its own; `done(i, result)` runs on the
/// calling thread as each item finishes (so callbacks such as progress never run concurrently).
/// After the first error no new item starts; the error is thrown once the running ones ended.
enum WorkPool {
    final class State<T>: @unchecked Sendable {
        let cond = NSCondition()
        var next = 0, running = 0
        var finished: [(Int, T)] = []
        var error: Error?
    }

    static func run<T>(count: Int, parallel: Int, work: @escaping @Sendable (Int) throws -> T, done: (Int, T) -> Void) throws {
        guard count > 0 else { return }
        let s = State<T>()
        let threads = min(max(1, parallel), count)
        s.running = threads
        for _ in 0..<threads {
            let t = Thread {
                while true {
                    s.cond.lock()
                    guard s.error == nil, s.next < count else { s.running -= 1; s.cond.broadcast(); s.cond.unlock(); return }
                    let i = s.next; s.next += 1
                    s.cond.unlock()
                    do {
                        let r = try work(i)
                        s.cond.lock(); s.finished.append((i, r)); s.cond.broadcast(); s.cond.unlock()
                    } catch {
                        s.cond.lock(); if s.error == nil { s.error = error }; s.cond.broadcast(); s.cond.unlock()
                    }
                }
            }
            t.start()
        }
        s.cond.lock()
        while true {
            while s.finished.isEmpty && s.running > 0 { s.cond.wait() }
            let batch = s.finished; s.finished.removeAll()
            let over = s.running == 0, failed = s.error != nil
            s.cond.unlock()
            if !failed { for (i, r) in batch { done(i, r) } }
            if over { break }
            s.cond.lock()
        }
        s.cond.lock(); let e = s.error; s.cond.unlock()
        if let e { throw e }
    }
}
