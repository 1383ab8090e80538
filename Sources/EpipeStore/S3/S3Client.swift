import Foundation
import EpipeKernels
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(FoundationXML)
import FoundationXML
#endif
import Crypto
import EpipeCore

/// What a HEAD of an object tells.
public struct S3ObjectInfo: Sendable, Equatable {
    public var size: Int64
    /// Without quotes.
    public var etag: String
    /// `x-amz-meta-*` headers, names lower-cased without the prefix.
    public var metadata: [String: String]
}

/// One part of a multipart upload, as ListParts reports it or as UploadPart returned it.
public struct S3Part: Sendable, Equatable {
    public var number: Int
    /// Without quotes.
    public var etag: String
    public var size: Int64
    /// Base64 SHA-256 of the part, when the upload carries checksums.
    public var checksumSHA256: String?
    public init(number: Int, etag: String, size: Int64, checksumSHA256: String? = nil) {
        self.number = number; self.etag = etag; self.size = size; self.checksumSHA256 = checksumSHA256
    }
}

/// What ListParts tells of an upload.
public struct S3PartList: Sendable, Equatable {
    public var parts: [S3Part]
    /// `SHA256` etc. when the upload was created with a checksum algorithm and the server says so.
    public var checksumAlgorithm: String?
}

/// A multipart upload in progress (ListMultipartUploads).
public struct S3Upload: Sendable, Equatable {
    public var key: String
    public var uploadId: String
    public var initiated: String
}

/// Counts request body bytes that reached the server (an attempt that got an HTTP answer,
/// whatever the answer). Shared by the threads of one transfer.
public final class S3ByteCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n: Int64 = 0
    public init() {}
    public func add(_ k: Int64) { lock.lock(); n += k; lock.unlock() }
    public var value: Int64 { lock.lock(); defer { lock.unlock() }; return n }
}

/// Fault injection for tests (set through `@testable import`; empty in production).
struct S3Hooks: Sendable {
    /// Called before each part of a multipart put is read and sent; throwing stops the put there.
    var beforePart: (@Sendable (Int) throws -> Void)? = nil
    /// Asked before each attempt of a request with a body (operation, part number or 0, attempt):
    /// true flips one byte of the body after its checksums were computed (corruption in flight).
    var corruptBody: (@Sendable (String, Int, Int) -> Bool)? = nil
    /// Entries per page of ListParts / ListMultipartUploads (small values exercise paging).
    var listPageSize = 1000
}

/// A small synchronous S3 client: path-style addressing (`endpoint/bucket/key`), Signature V4
/// with signed payloads, retries with exponential backoff and full jitter, an optional
/// bandwidth limit, and errors a user can act on (one line; never the secret key, the session
/// token or an `Authorization` value).
///
/// HTTP goes through Foundation's `URLSession` (FoundationNetworking on Linux), deliberately:
/// async-http-client would bring swift-nio and its friends into the package and add minutes to
/// every clean CI build, for a client that moves a few large bodies. Each call blocks its
/// thread until the answer (a semaphore around a data task); calls from several threads at once
/// are safe and run concurrently.
public final class S3Client: @unchecked Sendable {
    public let config: S3Config
    let signer: SigV4
    let scheme: String, hostHeader: String, basePath: String, endpointOrigin: String
    let session: URLSession
    let throttle: Throttle?
    private let lock = NSLock()
    private var noChecksums = false
    private var counts: [String: Int] = [:]

    /// Throws `.badInput` when the endpoint is not an http(s) URL.
    public init(config: S3Config) throws {
        self.config = config
        let ep = config.resolvedEndpoint
        guard let u = URLComponents(string: ep), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = u.host, !host.isEmpty else {
            throw EpipeError.badInput("--endpoint \(ep): not an http:// or https:// URL (e.g. https://s3.us-east-1.amazonaws.com or http://127.0.0.1:9000)")
        }
        guard u.query == nil, u.user == nil, u.password == nil else {
            throw EpipeError.badInput("--endpoint \(u.host ?? ep): give scheme, host, port and an optional path only (no query, no user:password)")
        }
        self.scheme = scheme
        let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        if let p = u.port, !(scheme == "http" && p == 80) && !(scheme == "https" && p == 443) { hostHeader = "\(h):\(p)" } else { hostHeader = h }
        endpointOrigin = "\(scheme)://\(h)" + (u.port.map { ":\($0)" } ?? "")
        var bp = u.percentEncodedPath
        while bp.hasSuffix("/") { bp.removeLast() }
        basePath = bp
        signer = SigV4(credentials: config.credentials, region: config.region)
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = config.timeout
        c.timeoutIntervalForResource = 7 * 24 * 3600
        c.httpMaximumConnectionsPerHost = max(4, config.parallel * 2)
        c.requestCachePolicy = .reloadIgnoringLocalCacheData
        c.urlCache = nil
        c.httpCookieStorage = nil
        c.httpShouldSetCookies = false
        session = URLSession(configuration: c)
        throttle = config.bytesPerSecond.flatMap { $0 > 0 ? Throttle(bytesPerSecond: $0) : nil }
    }

    deinit { session.finishTasksAndInvalidate() }

    // MARK: operations

    /// HeadBucket: returns when the bucket exists and the credentials may use it; throws the
    /// one-line `.badInput` of a missing bucket or refused credentials.
    public func headBucket(_ bucket: String) throws { try headBucket(bucket, allowAccessDenied: false) }

    /// `allowAccessDenied`: AccessDenied passes (credentials accepted, but without
    /// s3:ListBucket, which HeadBucket needs and a put does not).
    func headBucket(_ bucket: String, allowAccessDenied: Bool) throws {
        let r = try mapped {
            do { return try send("HeadBucket", method: "HEAD", bucket: bucket, key: nil, accept: [200, 404]) }
            catch let e as S3RequestError where allowAccessDenied && e.code == "AccessDenied" { return Response(status: 200, headers: [:], body: Data()) }
        }
        if r.status == 404 { throw noSuchBucket(bucket) }
    }

    /// PUT Bucket (CreateBucket), with a LocationConstraint outside us-east-1. An existing bucket
    /// owned by these credentials is not an error.
    public func createBucket(_ bucket: String) throws {
        var body = Data()
        if config.region != "us-east-1" {
            body = Data("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(S3XML.escape(config.region))</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        let r = try mapped { try send("CreateBucket", method: "PUT", bucket: bucket, key: nil, body: body, accept: [200, 409]) }
        if r.status == 409, let e = S3XML.error(r.body), e.code != "BucketAlreadyOwnedByYou" {
            throw EpipeError.failed("s3://\(bucket): cannot create the bucket (\(scrub(e.code)): \(scrub(S3Client.oneLine(e.message))))")
        }
    }

    /// HeadObject: size, ETag and `x-amz-meta-*`; nil when there is no such object, or when
    /// the server denies access to it (AWS answers 403 AccessDenied, not 404, for a missing key
    /// when the credentials lack s3:ListBucket). Refused credentials throw.
    public func headObject(bucket: String, key: String) throws -> S3ObjectInfo? {
        let r = try mapped {
            do { return try send("HeadObject", method: "HEAD", bucket: bucket, key: key, accept: [200, 404]) }
            catch let e as S3RequestError where e.code == "AccessDenied" { return Response(status: 404, headers: [:], body: Data()) }
        }
        if r.status == 404 { return nil }
        return info(r.headers)
    }

    /// PutObject of `body` with `x-amz-meta-*` `metadata` and `x-amz-checksum-sha256` (else `Content-MD5`);
    /// `x-amz-checksum-sha256` (dropped for good when the server says it does not support it).
    /// Returns the ETag.
    @discardableResult
    public func putObject(bucket: String, key: String, body: Data, metadata: [String: String] = [:], counter: S3ByteCounter? = nil) throws -> String {
        var h: [String: String] = ["content-type": "application/octet-stream"]
        for (k, v) in metadata { h["x-amz-meta-" + k.lowercased()] = v }
        let r = try mapped { try sendWithChecksums("PutObject", method: "PUT", bucket: bucket, key: key, headers: h, body: body, part: 0, counter: counter) }
        return S3Client.unquote(r.response.headers["etag"] ?? "")
    }

    /// GetObject of `range` (inclusive byte offsets) or of the whole object; `ifMatch` (an ETag)
    /// makes the server refuse when the object changed since.
    public func getObject(bucket: String, key: String, range: ClosedRange<Int64>? = nil, ifMatch: String? = nil) throws -> Data {
        var h: [String: String] = [:]
        if let r = range { h["range"] = "bytes=\(r.lowerBound)-\(r.upperBound)" }
        if let e = ifMatch, !e.isEmpty { h["if-match"] = "\"\(e)\"" }
        let r = try mapped { try send("GetObject", method: "GET", bucket: bucket, key: key, headers: h, accept: [200, 206]) }
        if let want = range {
            let n = want.upperBound - want.lowerBound + 1
            guard Int64(r.body.count) == n else {
                throw EpipeError.failed("\(uri(bucket, key)): GetObject of bytes \(want.lowerBound)-\(want.upperBound) returned \(r.body.count) bytes instead of \(n)")
            }
        }
        return r.body
    }

    /// CreateMultipartUpload with `x-amz-meta-*` metadata; asks for SHA-256 part checksums when
    /// `checksums` (and the server has not refused them). Returns the upload id and whether
    /// parts must carry `x-amz-checksum-sha256`.
    public func createMultipartUpload(bucket: String, key: String, metadata: [String: String] = [:], checksums: Bool = true) throws -> (uploadId: String, checksums: Bool) {
        var h: [String: String] = ["content-type": "application/octet-stream"]
        for (k, v) in metadata { h["x-amz-meta-" + k.lowercased()] = v }
        var withSums = checksums && checksumsEnabled
        return try mapped {
            while true {
                var hh = h
                if withSums { hh["x-amz-checksum-algorithm"] = "SHA256" }
                do {
                    let r = try send("CreateMultipartUpload", method: "POST", bucket: bucket, key: key, query: [("uploads", "")], headers: hh, body: Data())
                    guard let id = S3XML.parse(r.body)?.text("UploadId"), !id.isEmpty else {
                        throw EpipeError.failed("\(uri(bucket, key)): CreateMultipartUpload answered without an UploadId")
                    }
                    return (id, withSums)
                } catch let e as S3RequestError where withSums && e.checksumUnsupported {
                    // Degrade: parts then carry Content-MD5 (and the signed payload hash) only.
                    disableChecksums(); withSums = false
                }
            }
        }
    }

    /// UploadPart with `x-amz-checksum-sha256` (when `checksum`; else `Content-MD5`). Returns the
    /// part as the server recorded it (its ETag).
    /// `sha256` (the raw digest of `body`) saves hashing it again when the caller has it.
    public func uploadPart(bucket: String, key: String, uploadId: String, number: Int, body: Data, checksum: Bool, sha256: Data? = nil,
                           counter: S3ByteCounter? = nil) throws -> S3Part {
        let r = try mapped {
            try sendWithChecksums("UploadPart", method: "PUT", bucket: bucket, key: key, query: [("partNumber", String(number)), ("uploadId", uploadId)],
                                  headers: [:], body: body, sha256: sha256, part: number, counter: counter, checksum: checksum)
        }
        return S3Part(number: number, etag: S3Client.unquote(r.response.headers["etag"] ?? ""), size: Int64(body.count),
                      checksumSHA256: r.checksum)
    }

    /// ListParts, all pages: the parts as listed, sorted by number (some servers, SeaweedFS
    /// among them, list a part number once per upload of it), and the upload's checksum
    /// algorithm when the server says. nil when the upload no longer exists (NoSuchUpload:
    /// completed, aborted or expired).
    public func listParts(bucket: String, key: String, uploadId: String) throws -> S3PartList? {
        var parts: [S3Part] = []
        var algorithm: String? = nil
        var marker: String? = nil
        while true {
            var q = [("uploadId", uploadId), ("max-parts", String(config.hooks.listPageSize))]
            if let m = marker { q.append(("part-number-marker", m)) }
            let r: Response
            do { r = try send("ListParts", method: "GET", bucket: bucket, key: key, query: q) }
            catch let e as S3RequestError where e.code == "NoSuchUpload" || (e.status == 404 && e.code != "NoSuchBucket") { return nil }
            catch let e as S3RequestError { throw epipe(e) }
            guard let x = S3XML.parse(r.body) else { throw EpipeError.failed("\(uri(bucket, key)): ListParts answered with unreadable XML") }
            if let a = x.all("ChecksumAlgorithm").first?.text.trimmingCharacters(in: .whitespaces), !a.isEmpty { algorithm = a }
            for p in x.all("Part") {
                guard let n = Int(p.text("PartNumber") ?? ""), let size = Int64(p.text("Size") ?? "") else { continue }
                parts.append(S3Part(number: n, etag: S3Client.unquote(p.text("ETag") ?? ""), size: size, checksumSHA256: p.text("ChecksumSHA256")))
            }
            let next = x.text("NextPartNumberMarker") ?? ""
            guard x.text("IsTruncated") == "true", !next.isEmpty, next != marker else { break }
            marker = next
        }
        return S3PartList(parts: parts.enumerated().sorted { ($0.element.number, $0.offset) < ($1.element.number, $1.offset) }.map { $0.element },
                          checksumAlgorithm: algorithm)
    }

    /// ListMultipartUploads under `prefix`, all pages.
    public func listMultipartUploads(bucket: String, prefix: String) throws -> [S3Upload] {
        var out: [S3Upload] = []
        var keyMarker: String? = nil, idMarker: String? = nil
        while true {
            var q = [("uploads", ""), ("prefix", prefix), ("max-uploads", String(config.hooks.listPageSize))]
            if let k = keyMarker { q.append(("key-marker", k)) }
            if let i = idMarker { q.append(("upload-id-marker", i)) }
            let r = try mapped { try send("ListMultipartUploads", method: "GET", bucket: bucket, key: nil, query: q) }
            guard let x = S3XML.parse(r.body) else { throw EpipeError.failed("s3://\(bucket): ListMultipartUploads answered with unreadable XML") }
            for u in x.all("Upload") {
                guard let k = u.text("Key"), let id = u.text("UploadId") else { continue }
                out.append(S3Upload(key: k, uploadId: id, initiated: u.text("Initiated") ?? ""))
            }
            let nk = x.text("NextKeyMarker") ?? "", ni = x.text("NextUploadIdMarker") ?? ""
            guard x.text("IsTruncated") == "true", !(nk.isEmpty && ni.isEmpty), nk != keyMarker || ni != idMarker else { break }
            keyMarker = nk; idMarker = ni
        }
        return out
    }

    /// CompleteMultipartUpload of `parts` (sorted by number). Returns the object's ETag. A 200
    /// answer that carries an `<Error>` (S3 may fail after it started answering) is an error.
    @discardableResult
    public func completeMultipartUpload(bucket: String, key: String, uploadId: String, parts: [S3Part]) throws -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for p in parts.sorted(by: { $0.number < $1.number }) {
            xml += "<Part><PartNumber>\(p.number)</PartNumber><ETag>\(S3XML.escape("\"" + p.etag + "\""))</ETag>"
            if let c = p.checksumSHA256 { xml += "<ChecksumSHA256>\(S3XML.escape(c))</ChecksumSHA256>" }
            xml += "</Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let r = try mapped {
            try send("CompleteMultipartUpload", method: "POST", bucket: bucket, key: key, query: [("uploadId", uploadId)],
                     headers: ["content-type": "application/xml"], body: Data(xml.utf8), errorIn200: true)
        }
        return S3Client.unquote(S3XML.parse(r.body)?.text("ETag") ?? "")
    }

    /// AbortMultipartUpload (no error when the upload is already gone).
    public func abortMultipartUpload(bucket: String, key: String, uploadId: String) throws {
        _ = try mapped { try send("AbortMultipartUpload", method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadId)], accept: [200, 204, 404]) }
    }

    /// DeleteObject (no error when there is no such object).
    public func deleteObject(bucket: String, key: String) throws {
        _ = try mapped { try send("DeleteObject", method: "DELETE", bucket: bucket, key: key, accept: [200, 204, 404]) }
    }

    // MARK: checksums

    /// Whether requests still carry `x-amz-checksum-sha256` (false once the server refused it).
    public var checksumsEnabled: Bool { lock.lock(); defer { lock.unlock() }; return !noChecksums }
    func disableChecksums() { lock.lock(); noChecksums = true; lock.unlock() }

    static func base64SHA256(_ d: Data) -> String { Data(SHA256.hash(data: d)).base64EncodedString() }
    static func base64MD5(_ d: Data) -> String { Data(Insecure.MD5.hash(data: d)).base64EncodedString() }

    /// Sends `body` with `x-amz-checksum-sha256` when `checksum` and the server has not refused it,
    /// else with `Content-MD5` (one checksum a part, as the issue asks: MD5 costs more CPU than the
    /// SHA-256 the signature needs anyway); returns the answer and the checksum sent (base64), if any.
    func sendWithChecksums(_ op: String, method: String, bucket: String, key: String, query: [(String, String)] = [], headers: [String: String],
                           body: Data, sha256: Data? = nil, part: Int, counter: S3ByteCounter?, checksum: Bool = true) throws -> (response: Response, checksum: String?) {
        let h = headers
        let sha = sha256 ?? Data(SHA256.hash(data: body))
        var withSum = checksum && checksumsEnabled
        while true {
            var hh = h
            if withSum { hh["x-amz-checksum-sha256"] = sha.base64EncodedString() } else { hh["content-md5"] = S3Client.base64MD5(body) }
            do {
                let r = try send(op, method: method, bucket: bucket, key: key, query: query, headers: hh, body: body,
                                 payloadSHA256: SigV4.hex(sha), part: part, counter: counter)
                return (r, withSum ? sha.base64EncodedString() : nil)
            } catch let e as S3RequestError where withSum && e.checksumUnsupported {
                // Degrade: a server without x-amz-checksum-sha256 still checks Content-MD5 (and
                // the signed x-amz-content-sha256).
                disableChecksums(); withSum = false
            }
        }
    }

    /// Turns the S3 errors a caller did not handle into `EpipeError`s (one line).
    func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as S3RequestError { throw epipe(e) }
    }

    /// Refused credentials and a missing bucket: `.badInput` saying what to fix; the rest `.failed`.
    func epipe(_ e: S3RequestError) -> EpipeError {
        if S3Client.authCodes.contains(e.code) || e.status == 403 { return refused(e.bucket, code: e.code, message: e.message) }
        if e.code == "NoSuchBucket" { return noSuchBucket(e.bucket) }
        return EpipeError.failed(e.description)
    }

    /// Requests sent per operation (every attempt), for tests and diagnostics.
    public func requestCount(_ op: String) -> Int { lock.lock(); defer { lock.unlock() }; return counts[op, default: 0] }
    func count(_ op: String) { lock.lock(); counts[op, default: 0] += 1; lock.unlock() }

    // MARK: requests

    struct Response { var status: Int; var headers: [String: String]; var body: Data }

    /// An S3 error answer the caller may want to look at (code, status) before it becomes an
    /// `EpipeError` (`asEpipeError`).
    struct S3RequestError: Error, CustomStringConvertible {
        var op: String, bucket: String, resource: String, status: Int, code: String, message: String, tries: Int
        var description: String { "\(resource): \(op) failed (HTTP \(status)\(code.isEmpty ? "" : " \(code)")\(message.isEmpty ? "" : ": \(message)"))" }
        var checksumUnsupported: Bool {
            let m = (code + " " + message).lowercased()
            return status == 501 || code == "NotImplemented" || ((code == "InvalidArgument" || code == "InvalidRequest" || code == "UnsupportedHeader") && m.contains("checksum"))
        }
    }

    static let authCodes: Set<String> = ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
                                         "TokenRefreshRequired", "InvalidSecurity", "AuthorizationHeaderMalformed", "InvalidClientTokenId"]
    static let retryCodes: Set<String> = ["SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "ThrottledException",
                                          "RequestThrottled", "InternalError", "ServiceUnavailable", "BadDigest",
                                          "XAmzContentSHA256Mismatch", "OperationAborted"]

    func uri(_ bucket: String, _ key: String?) -> String { "s3://\(bucket)" + (key.map { "/" + $0 } ?? "") }

    func noSuchBucket(_ bucket: String) -> EpipeError {
        EpipeError.badInput("s3://\(bucket): no such bucket at \(endpointOrigin); create it or fix --to")
    }

    func refused(_ bucket: String, code: String, message: String) -> EpipeError {
        if code == "AccessDenied" {
            return EpipeError.badInput("s3://\(bucket): the server refused access (AccessDenied\(message.isEmpty ? "" : ": " + message)); check the permissions of the credentials from \(config.credentials.source), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile")
        }
        return EpipeError.badInput("s3://\(bucket): the server refused the credentials (\(code)); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile (using \(config.credentials.source), key id \(config.credentials.accessKeyId))")
    }

    /// Sends one request, retrying what may pass on a later try. `accept` lists the statuses
    /// handed back as answers (besides 2xx); other answers throw `S3RequestError` (for the
    /// caller to handle, e.g. NoSuchUpload or a checksum refusal, or to turn into an
    /// `EpipeError` with `mapped`), and what failed every try throws `EpipeError.failed`.
    func send(_ op: String, method: String, bucket: String, key: String?, query: [(String, String)] = [], headers: [String: String] = [:],
              body: Data? = nil, payloadSHA256: String? = nil, part: Int = 0, counter: S3ByteCounter? = nil,
              accept: Set<Int> = [], errorIn200: Bool = false) throws -> Response {
        let resource = uri(bucket, key)
        var path = basePath + "/" + SigV4.uriEncode(bucket, encodeSlash: true)
        if let k = key { path += "/" + SigV4.uriEncode(k, encodeSlash: false) }
        let encoded = query.map { (SigV4.uriEncode($0.0, encodeSlash: true), SigV4.uriEncode($0.1, encodeSlash: true)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        let queryString = encoded.map { $0.1.isEmpty ? $0.0 : "\($0.0)=\($0.1)" }.joined(separator: "&")
        guard let url = URL(string: endpointOrigin + path + (queryString.isEmpty ? "" : "?" + queryString)) else {
            throw EpipeError.badInput("\(resource): cannot form a URL for this key")
        }
        let payload = payloadSHA256 ?? (body.map { SigV4.hex(SHA256.hash(data: $0)) } ?? SigV4.emptySHA256)
        let attempts = max(1, config.retries)
        var last = ""
        for attempt in 1...attempts {
            if attempt > 1 { Thread.sleep(forTimeInterval: backoff(attempt - 1)) }
            var h = headers
            h["host"] = hostHeader
            let signed = signer.sign(method: method, path: path, query: query, headers: h, payloadSHA256: payload, date: Date())
            var req = URLRequest(url: url)
            req.httpMethod = method
            for (k, v) in signed where k != "host" { req.setValue(v, forHTTPHeaderField: k) }
            if var b = body {
                if let hook = config.hooks.corruptBody, !b.isEmpty, hook(op, part, attempt) { b[b.startIndex + b.count / 2] ^= 0x5A }
                throttle?.take(b.count)
                req.httpBody = b
            }
            count(op)
            let (status, hdrs, data, err) = perform(req)
            if let err {
                last = scrub(S3Client.describe(err))
                if S3Client.isRetryable(err) && attempt < attempts { continue }
                if S3Client.isRetryable(err) { break }
                throw EpipeError.failed("\(resource): \(op) failed (\(last)); check --endpoint \(endpointOrigin)")
            }
            if let b = body { counter?.add(Int64(b.count)) }
            var e = (200..<300).contains(status) && !(errorIn200 && S3XML.error(data) != nil) ? nil : S3XML.error(data)
            if (200..<300).contains(status) && e == nil { return Response(status: status, headers: hdrs, body: data) }
            if accept.contains(status) { return Response(status: status, headers: hdrs, body: data) }
            if e == nil, method == "HEAD", status == 400 || status == 403 { e = probe(path: path, query: query, url: url) }
            if e == nil { e = (S3Client.statusCode(status), "") }
            let code = scrub(e!.code), message = scrub(S3Client.oneLine(e!.message))
            last = "HTTP \(status) \(code)"
            let retry = status >= 500 || status == 429 || S3Client.retryCodes.contains(code) || (200..<300).contains(status)
            if retry && attempt < attempts { continue }
            if retry { break }
            if code == "RequestTimeTooSkewed" {
                throw EpipeError.badInput("\(resource): the server says this machine's clock is off (RequestTimeTooSkewed); fix the clock (NTP) and retry")
            }
            throw S3RequestError(op: op, bucket: bucket, resource: resource, status: status, code: code, message: message, tries: attempt)
        }
        let hint = last.hasSuffix("BadDigest") || last.hasSuffix("XAmzContentSHA256Mismatch")
            ? "the server received other bytes than were sent each time; check the network path (proxy, NIC, memory), then rerun"
            : "check that \(endpointOrigin) is up, then rerun to resume"
        throw EpipeError.failed("\(resource): \(op) failed after \(attempts) tr\(attempts == 1 ? "y" : "ies") (last: \(last)); \(hint)")
    }

    /// `s` with the secret key, the session token and any signature taken out: what a server
    /// says goes into our messages, and a server could echo what it was sent.
    func scrub(_ s: String) -> String {
        var t = s
        for secret in [config.credentials.secretAccessKey, config.credentials.sessionToken ?? ""] where secret.count >= 4 {
            t = t.replacingOccurrences(of: secret, with: "<redacted>")
        }
        if let r = t.range(of: "Signature=") {
            let tail = t[r.upperBound...].prefix { $0.isHexDigit }
            t.replaceSubrange(r.upperBound..<t.index(r.upperBound, offsetBy: tail.count), with: "<redacted>")
        }
        return t
    }

    /// A HEAD answer has no body, so a refused HEAD does not say why: the same resource is asked
    /// once more as a GET of one byte, whose error body names the code (InvalidAccessKeyId,
    /// SignatureDoesNotMatch, AccessDenied...).
    func probe(path: String, query: [(String, String)], url: URL) -> (code: String, message: String)? {
        let signed = signer.sign(method: "GET", path: path, query: query, headers: ["host": hostHeader, "range": "bytes=0-0"],
                                 payloadSHA256: SigV4.emptySHA256, date: Date())
        var req = URLRequest(url: url)
        req.httpMethod = "GET"
        for (k, v) in signed where k != "host" { req.setValue(v, forHTTPHeaderField: k) }
        count("probe")
        let (_, _, data, err) = perform(req)
        return err == nil ? S3XML.error(data) : nil
    }

    /// The answer of one HTTP exchange, or the transport error.
    func perform(_ req: URLRequest) -> (Int, [String: String], Data, Error?) {
        if req.url?.scheme == "http" { return PlainHTTP.exchange(req, timeout: config.timeout) }
        final class Box: @unchecked Sendable { var data: Data?; var resp: URLResponse?; var err: Error? }
        let box = Box()
        let sem = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: req) { d, r, e in box.data = d; box.resp = r; box.err = e; sem.signal() }
        task.resume()
        sem.wait()
        if let e = box.err { return (0, [:], Data(), e) }
        guard let http = box.resp as? HTTPURLResponse else { return (0, [:], Data(), URLError(.badServerResponse)) }
        var h: [String: String] = [:]
        for (k, v) in http.allHeaderFields { if let k = k as? String, let v = v as? String { h[k.lowercased()] = v } }
        return (http.statusCode, h, box.data ?? Data(), nil)
    }

    /// Full jitter: uniform in [0, min(cap, base * 2^(n-1))].
    func backoff(_ n: Int) -> TimeInterval {
        let ceiling = min(config.backoffCap, config.backoffBase * pow(2, Double(max(0, n - 1))))
        return ceiling > 0 ? Double.random(in: 0...ceiling) : 0
    }

    static func isRetryable(_ e: Error) -> Bool {
        guard let u = e as? URLError else { return (e as NSError).domain == NSPOSIXErrorDomain }
        switch u.code {
        case .timedOut, .cannotConnectToHost, .networkConnectionLost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet,
             .badServerResponse, .zeroByteResource, .cannotParseResponse, .resourceUnavailable, .internationalRoamingOff, .callIsActive,
             .dataNotAllowed, .secureConnectionFailed:
            return true
        default: return false
        }
    }

    static func describe(_ e: Error) -> String {
        if let u = e as? URLError {
            switch u.code {
            case .cannotConnectToHost: return "connection refused"
            case .networkConnectionLost: return "connection reset"
            case .timedOut: return "timed out"
            case .cannotFindHost, .dnsLookupFailed: return "host not found"
            case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
                 .serverCertificateHasUnknownRoot, .clientCertificateRejected:
                return "TLS failed (URLError \(u.code.rawValue))"
            default: return "network error (URLError \(u.code.rawValue))"
            }
        }
        return oneLine((e as NSError).localizedDescription)
    }

    static func statusCode(_ s: Int) -> String {
        switch s {
        case 400: return "BadRequest"
        case 403: return "Forbidden"
        case 404: return "NotFound"
        case 409: return "Conflict"
        case 412: return "PreconditionFailed"
        case 416: return "InvalidRange"
        case 429: return "TooManyRequests"
        case 500: return "InternalError"
        case 503: return "ServiceUnavailable"
        default: return "HTTP\(s)"
        }
    }

    func info(_ h: [String: String]) -> S3ObjectInfo {
        var meta: [String: String] = [:]
        for (k, v) in h where k.hasPrefix("x-amz-meta-") { meta[String(k.dropFirst(11))] = v }
        return S3ObjectInfo(size: Int64(h["content-length"] ?? "") ?? -1, etag: S3Client.unquote(h["etag"] ?? ""), metadata: meta)
    }

    static func unquote(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("W/") { t.removeFirst(2) }
        if t.hasPrefix("\"") && t.hasSuffix("\"") && t.count >= 2 { t = String(t.dropFirst().dropLast()) }
        return t
    }

    /// One line, at most 300 characters (server messages go into our one-line errors).
    static func oneLine(_ s: String) -> String {
        let t = s.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\t" }).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        return t.count > 300 ? String(t.prefix(300)) + "…" : t
    }
}

/// Token bucket for request bodies, shared by all threads of a client: a body of n bytes waits
/// until the bucket has paid for it at `bytesPerSecond`; an idle bucket holds one second's worth
/// (the burst). The limit holds on average over the bodies, not within one body.
final class Throttle: @unchecked Sendable {
    private let lock = NSLock()
    private let rate: Double
    private var next: Double
    init(bytesPerSecond: Double) { rate = bytesPerSecond; next = Throttle.now() - 1 }
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    func take(_ n: Int) {
        lock.lock()
        let t = Throttle.now()
        let start = max(next, t - 1)
        next = start + Double(n) / rate
        let wait = next - t
        lock.unlock()
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
    }
}

/// The XML S3 answers with, as a small tree (XMLParser: entities such as `&quot;` in ETags are
/// decoded).
final class S3XML {
    let name: String
    var text = ""
    var children: [S3XML] = []
    init(_ name: String) { self.name = name }

    /// The first descendant named `n` (depth first).
    func first(_ n: String) -> S3XML? {
        for c in children { if c.name == n { return c }; if let f = c.first(n) { return f } }
        return nil
    }
    func text(_ n: String) -> String? { first(n)?.text.trimmingCharacters(in: .whitespacesAndNewlines) }
    /// Direct children named `n`.
    func all(_ n: String) -> [S3XML] { children.filter { $0.name == n } }

    static func parse(_ d: Data) -> S3XML? {
        guard !d.isEmpty else { return nil }
        let b = Builder()
        let p = XMLParser(data: d)
        p.delegate = b
        guard p.parse(), let root = b.root else { return nil }
        return root
    }

    /// `<Error><Code>…</Code><Message>…</Message></Error>`, when the body is one.
    static func error(_ d: Data) -> (code: String, message: String)? {
        guard let x = parse(d), x.name == "Error" else { return nil }
        return (x.text("Code") ?? "", x.text("Message") ?? "")
    }

    static func escape(_ s: String) -> String { Markup.escape(s) }

    final class Builder: NSObject, XMLParserDelegate {
        var stack: [S3XML] = []
        var root: S3XML?
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            let n = S3XML(elementName)
            if let top = stack.last { top.children.append(n) } else { root = n }
            stack.append(n)
        }
        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) { _ = stack.popLast() }
        func parser(_ parser: XMLParser, foundCharacters string: String) { stack.last?.text += string }
    }
}
