import XCTest
import Foundation
import EpipeCore
@testable import EpipeStore

/// Signature V4 against the worked examples of the S3 API reference ("Signature Calculations
/// for the Authorization Header: Transferring Payload in a Single Chunk", examplebucket,
/// 20130524, AKIAIOSFODNN7EXAMPLE), plus URI encoding and credential handling.
final class SigV4Tests: XCTestCase {
    let creds = S3Credentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    let at = Date(timeIntervalSince1970: 1_369_353_600)   // 2013-05-24T00:00:00Z
    let host = "examplebucket.s3.amazonaws.com"
    var signer: SigV4 { SigV4(credentials: creds, region: "us-east-1") }

    func testAmzDate() {
        XCTAssertEqual(SigV4.amzDate(at), "20130524T000000Z")
    }

    /// "Example: GET Object": the first 10 bytes of test.txt.
    func testGetObjectExample() {
        let h = signer.sign(method: "GET", path: "/test.txt", query: [], headers: ["Host": host, "Range": "bytes=0-9"],
                            payloadSHA256: SigV4.emptySHA256, date: at)
        XCTAssertEqual(h["authorization"], "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        XCTAssertEqual(h["x-amz-date"], "20130524T000000Z")
        XCTAssertEqual(h["x-amz-content-sha256"], SigV4.emptySHA256)
        XCTAssertNil(h["x-amz-security-token"])
        // The intermediate steps printed on the same page.
        var signedHeaders = h; signedHeaders["authorization"] = nil
        let (canonical, names) = SigV4.canonicalRequest(method: "GET", path: "/test.txt", query: [], headers: signedHeaders, payloadSHA256: SigV4.emptySHA256)
        XCTAssertEqual(canonical, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(names, "host;range;x-amz-content-sha256;x-amz-date")
        XCTAssertEqual(SigV4.stringToSign(amzDate: "20130524T000000Z", scope: "20130524/us-east-1/s3/aws4_request", canonicalRequest: canonical),
                       "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    }

    /// "Example: PUT Object": "Welcome to Amazon S3." to test$file.text ('$' encoded in the path).
    func testPutObjectExample() {
        let body = Data("Welcome to Amazon S3.".utf8)
        let payload = Digest.sha256(body)
        XCTAssertEqual(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let path = "/" + SigV4.uriEncode("test$file.text", encodeSlash: false)
        XCTAssertEqual(path, "/test%24file.text")
        let h = signer.sign(method: "PUT", path: path, query: [],
                            headers: ["Host": host, "Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"],
                            payloadSHA256: payload, date: at)
        XCTAssertEqual(h["authorization"], "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
        var signedHeaders = h; signedHeaders["authorization"] = nil
        let canonical = SigV4.canonicalRequest(method: "PUT", path: path, query: [], headers: signedHeaders, payloadSHA256: payload).request
        XCTAssertEqual(SigV4.stringToSign(amzDate: "20130524T000000Z", scope: "20130524/us-east-1/s3/aws4_request", canonicalRequest: canonical),
                       "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d")
    }

    /// "Example: GET Bucket Lifecycle": a query parameter without a value signs as `lifecycle=`.
    func testGetBucketLifecycleExample() {
        let h = signer.sign(method: "GET", path: "/", query: [("lifecycle", "")], headers: ["Host": host], payloadSHA256: SigV4.emptySHA256, date: at)
        XCTAssertEqual(h["authorization"], "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    /// "Example: Get Bucket (List Objects)": `max-keys=2&prefix=J`, given out of order.
    func testListObjectsExample() {
        let h = signer.sign(method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: ["Host": host], payloadSHA256: SigV4.emptySHA256, date: at)
        XCTAssertEqual(h["authorization"], "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    func testSessionTokenIsSignedAndSent() {
        let t = S3Credentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", sessionToken: "FQoGZXIvYXdzEXAMPLETOKEN")
        let h = SigV4(credentials: t, region: "us-east-1").sign(method: "GET", path: "/test.txt", query: [], headers: ["Host": host],
                                                                 payloadSHA256: SigV4.emptySHA256, date: at)
        XCTAssertEqual(h["x-amz-security-token"], "FQoGZXIvYXdzEXAMPLETOKEN")
        XCTAssertTrue(h["authorization"]!.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
        XCTAssertFalse(h["authorization"]!.contains("FQoGZXIvYXdzEXAMPLETOKEN"))
    }

    func testURIEncoding() {
        XCTAssertEqual(SigV4.uriEncode("scan 01.tif", encodeSlash: false), "scan%2001.tif")
        XCTAssertEqual(SigV4.uriEncode("a+b=c", encodeSlash: false), "a%2Bb%3Dc")
        XCTAssertEqual(SigV4.uriEncode("raw/ab/c d.tif", encodeSlash: false), "raw/ab/c%20d.tif")
        XCTAssertEqual(SigV4.uriEncode("raw/ab", encodeSlash: true), "raw%2Fab")
        XCTAssertEqual(SigV4.uriEncode("A-Za-z0-9-._~", encodeSlash: true), "A-Za-z0-9-._~")
        XCTAssertEqual(SigV4.uriEncode("µm Ki-67 ✓", encodeSlash: false), "%C2%B5m%20Ki-67%20%E2%9C%93")
        XCTAssertEqual(SigV4.uriEncode("100%!*'()&?#", encodeSlash: true), "100%25%21%2A%27%28%29%26%3F%23")
        // Query: names and values encoded, sorted by name then value; '+' is not a space.
        XCTAssertEqual(SigV4.canonicalQuery([("uploadId", "a+b/c="), ("partNumber", "10"), ("b", ""), ("a", "y"), ("a", "x")]),
                       "a=x&a=y&b=&partNumber=10&uploadId=a%2Bb%2Fc%3D")
        XCTAssertEqual(SigV4.canonicalQuery([]), "")
        // Header values: trimmed, inner runs of spaces collapsed.
        XCTAssertEqual(SigV4.canonicalRequest(method: "GET", path: "/", query: [], headers: ["X-Amz-Meta-A": "  a   b  "], payloadSHA256: "p").request,
                       "GET\n/\n\nx-amz-meta-a:a b\n\nx-amz-meta-a\np")
    }

    func testCredentialsNeverPrintTheSecret() throws {
        let c = S3Credentials(accessKeyId: "AKIDTEST", secretAccessKey: "s3cr3t-VALUE-xyz", sessionToken: "tok-SECRET-123", source: "environment")
        for text in [c.description, "\(c)", String(reflecting: c), { var s = ""; dump(c, to: &s); return s }()] {
            XCTAssertFalse(text.contains("s3cr3t-VALUE-xyz"), text)
            XCTAssertFalse(text.contains("tok-SECRET-123"), text)
            XCTAssertTrue(text.contains("AKIDTEST"), text)
        }
    }

    func testCredentialsFromEnvironmentAndFile() throws {
        let dir = NSTemporaryDirectory() + "epipe-creds-" + UUID().uuidString
        try Files.mkdir(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/credentials"
        try """
        # comment
        [default]
        aws_access_key_id = AKIDDEFAULT
        aws_secret_access_key = secretdefault

        [profile lab]
        aws_access_key_id=AKIDLAB
        aws_secret_access_key=secretlab
        aws_session_token = toklab
        """.write(toFile: file, atomically: true, encoding: .utf8)

        let env = try S3Credentials.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secretenv", "AWS_SHARED_CREDENTIALS_FILE": file])
        XCTAssertEqual(env.accessKeyId, "AKIDENV"); XCTAssertEqual(env.source, "environment")
        let def = try S3Credentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file])
        XCTAssertEqual(def.accessKeyId, "AKIDDEFAULT"); XCTAssertEqual(def.secretAccessKey, "secretdefault"); XCTAssertNil(def.sessionToken)
        let lab = try S3Credentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "lab"])
        XCTAssertEqual(lab.accessKeyId, "AKIDLAB"); XCTAssertEqual(lab.sessionToken, "toklab")
        // --profile wins over the environment.
        let flag = try S3Credentials.resolve(profile: "lab", environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secretenv", "AWS_SHARED_CREDENTIALS_FILE": file])
        XCTAssertEqual(flag.accessKeyId, "AKIDLAB")

        // Missing: one line naming where it looked.
        for (profile, env) in [(nil, ["HOME": dir + "/nohome"]), ("nope", ["AWS_SHARED_CREDENTIALS_FILE": file]),
                               (nil, ["AWS_ACCESS_KEY_ID": "AKIDONLY", "HOME": dir])] as [(String?, [String: String])] {
            XCTAssertThrowsError(try S3Credentials.resolve(profile: profile, environment: env)) { e in
                let m = (e as? EpipeError)?.message ?? ""
                XCTAssertEqual((e as? EpipeError)?.kind, .badInput)
                XCTAssertFalse(m.contains("\n"), m)
                XCTAssertTrue(m.contains("credentials"), m)
            }
        }
        XCTAssertThrowsError(try S3Credentials.resolve(environment: ["HOME": dir + "/nohome"])) { e in
            XCTAssertTrue("\(e)".contains(dir + "/nohome/.aws/credentials"), "\(e)")
        }
    }

    func testParseURI() throws {
        XCTAssertTrue(try S3Store.parse(uri: "s3://bucket") == ("bucket", ""))
        XCTAssertTrue(try S3Store.parse(uri: "s3://my.bucket-1/raw/scans/") == ("my.bucket-1", "raw/scans"))
        for bad in ["file:///x", "s3://", "s3:///prefix", "s3://ab", "s3://-bucket/x", "s3://bucket//x", "s3://bucket/a/../b", "s3://buck et/x", "https://bucket/x"] {
            XCTAssertThrowsError(try S3Store.parse(uri: bad), bad) { e in
                XCTAssertEqual((e as? EpipeError)?.kind, .badInput, bad)
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
        let store = try S3Store(uri: "s3://bucket/raw", config: S3Config(credentials: creds, endpoint: "http://127.0.0.1:1"), stateDir: "/tmp/x")
        XCTAssertEqual(store.base, "s3://bucket/raw")
        XCTAssertEqual(store.uri("ab/cd.tif"), "s3://bucket/raw/ab/cd.tif")
        XCTAssertEqual(store.objectKey("ab/cd.tif"), "raw/ab/cd.tif")
        XCTAssertThrowsError(try S3Store(uri: "s3://bucket", config: S3Config(credentials: creds, endpoint: "ftp://x"), stateDir: "/tmp/x"))
        XCTAssertEqual(S3Config(credentials: creds, region: "eu-west-1").resolvedEndpoint, "https://s3.eu-west-1.amazonaws.com")
    }

    func testPartPlanAndBackoff() throws {
        let store = try S3Store(uri: "s3://bucket", config: S3Config(credentials: creds, endpoint: "http://127.0.0.1:1", partSize: 1 << 20), stateDir: "/tmp/x")
        XCTAssertEqual(store.config.partSize, 5 << 20, "raised to S3's 5 MiB minimum")
        let plan = S3Store.Plan(size: 23 << 20, partSize: 5 << 20)
        XCTAssertEqual(plan.count, 5)
        XCTAssertEqual(plan.length(5), 3 << 20)
        XCTAssertEqual(plan.offset(5), 20 << 20)
        // 1 TiB in 64 MiB parts would be 16384 parts: raised to fit in 10,000.
        let big = store.partSize(for: 1 << 40)
        XCTAssertLessThanOrEqual((Int64(1) << 40 + Int64(big) - 1) / Int64(big), 10_000)
        XCTAssertEqual(big % (1 << 20), 0)
        for n in 1...12 {
            let b = store.client.backoff(n)
            XCTAssertGreaterThanOrEqual(b, 0)
            XCTAssertLessThanOrEqual(b, min(10, 0.2 * pow(2, Double(n - 1))))
        }
        XCTAssertTrue(S3Store.isMultipartETag("d41d8cd98f00b204e9800998ecf8427e-5"))
        XCTAssertFalse(S3Store.isMultipartETag("d41d8cd98f00b204e9800998ecf8427e"))
    }

    func testXMLAndErrors() {
        let x = S3XML.parse(Data("""
        <?xml version="1.0" encoding="UTF-8"?>
        <ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>
        <Part><PartNumber>1</PartNumber><ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>5242880</Size></Part>
        <Part><PartNumber>2</PartNumber><ETag>"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"</ETag><Size>10</Size></Part></ListPartsResult>
        """.utf8))!
        XCTAssertEqual(x.all("Part").count, 2)
        XCTAssertEqual(S3Client.unquote(x.all("Part")[0].text("ETag")!), "7778aef83f66abc1fa1e8477f296d394")
        XCTAssertEqual(x.text("NextPartNumberMarker"), "2")
        let e = S3XML.error(Data("<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a &amp; b</Key></Error>".utf8))
        XCTAssertEqual(e?.code, "NoSuchKey"); XCTAssertEqual(e?.message, "The specified key does not exist.")
        XCTAssertNil(S3XML.error(Data("<ListBucketResult/>".utf8)))
        XCTAssertNil(S3XML.error(Data()))
        XCTAssertEqual(S3XML.escape("\"a\"&<b>"), "&quot;a&quot;&amp;&lt;b&gt;")
        // Which refusals mean "this server has no x-amz-checksum-sha256" (then Content-MD5 only).
        func err(_ status: Int, _ code: String, _ message: String) -> S3Client.S3RequestError {
            S3Client.S3RequestError(op: "PutObject", bucket: "b", resource: "s3://b/k", status: status, code: code, message: message, tries: 1)
        }
        XCTAssertTrue(err(501, "NotImplemented", "A header you provided implies functionality that is not implemented").checksumUnsupported)
        XCTAssertTrue(err(400, "InvalidArgument", "x-amz-checksum-sha256 is not supported").checksumUnsupported)
        XCTAssertFalse(err(400, "BadDigest", "The SHA256 checksum you specified did not match").checksumUnsupported)
        XCTAssertFalse(err(400, "InvalidArgument", "Part number must be an integer").checksumUnsupported)
    }

    func testMessagesAreScrubbed() throws {
        let t = S3Credentials(accessKeyId: "AKID", secretAccessKey: "the-secret-Value", sessionToken: "the-session-Token")
        let client = try S3Client(config: S3Config(credentials: t, endpoint: "http://127.0.0.1:1"))
        let m = client.scrub("echo: the-secret-Value / the-session-Token / AWS4-HMAC-SHA256 Credential=AKID/x,Signature=0123abcdef tail")
        XCTAssertFalse(m.contains("the-secret-Value")); XCTAssertFalse(m.contains("the-session-Token")); XCTAssertFalse(m.contains("0123abcdef"))
        XCTAssertTrue(m.hasSuffix(" tail"))
    }

    func testThrottlePacesBodies() {
        let t = Throttle(bytesPerSecond: 4_000_000)
        let t0 = Date()
        for _ in 0..<6 { t.take(1_000_000) }   // 4 MB burst free, then 2 MB at 4 MB/s
        let dt = Date().timeIntervalSince(t0)
        XCTAssertGreaterThan(dt, 0.4); XCTAssertLessThan(dt, 1.5)
    }
}
