import Foundation
import Crypto

/// AWS Signature Version 4 for S3, header-based (the `Authorization` header), with a signed
/// payload: `x-amz-content-sha256` is the hex SHA-256 of the body (never `UNSIGNED-PAYLOAD`),
/// so a body altered in flight no longer matches its signature.
///
/// Follows "Authenticating Requests: Using the Authorization Header" of the S3 API reference:
/// canonical request (method, URI-encoded path, sorted canonical query, sorted lower-case
/// headers, signed header list, payload hash), string to sign, and the signing key
/// HMAC("AWS4" + secret, date) -> region -> service -> "aws4_request".
public struct SigV4: Sendable {
    /// SHA-256 of the empty body.
    public static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    public let credentials: S3Credentials
    public let region: String
    public let service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials; self.region = region; self.service = service
    }

    /// The headers to send: `headers` (names lower-cased, which must include `host`) plus
    /// `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (when the credentials carry a
    /// session token) and `authorization`. Every header given is signed. `path` is the request
    /// path exactly as sent (already URI-encoded, see `uriEncode`); `query` holds raw names and
    /// values (encoded and sorted here).
    public func sign(method: String, path: String, query: [(String, String)], headers: [String: String],
                     payloadSHA256: String, date: Date) -> [String: String] {
        var h: [String: String] = [:]
        for (k, v) in headers { h[k.lowercased()] = v }
        let stamp = SigV4.amzDate(date)
        h["x-amz-date"] = stamp
        h["x-amz-content-sha256"] = payloadSHA256
        if let t = credentials.sessionToken, !t.isEmpty { h["x-amz-security-token"] = t }
        let (canonical, signed) = SigV4.canonicalRequest(method: method, path: path, query: query, headers: h, payloadSHA256: payloadSHA256)
        let day = String(stamp.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = SigV4.stringToSign(amzDate: stamp, scope: scope, canonicalRequest: canonical)
        let key = SigV4.signingKey(secret: credentials.secretAccessKey, day: day, region: region, service: service)
        let signature = SigV4.hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: key))
        h["authorization"] = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope),SignedHeaders=\(signed),Signature=\(signature)"
        return h
    }

    /// The canonical request and the signed header list (`host;range;x-amz-date`).
    public static func canonicalRequest(method: String, path: String, query: [(String, String)], headers: [String: String],
                                        payloadSHA256: String) -> (request: String, signedHeaders: String) {
        var lower: [String: String] = [:]
        for (k, v) in headers { lower[k.lowercased()] = trimHeaderValue(v) }
        let names = lower.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(lower[$0]!)\n" }.joined()
        let signed = names.joined(separator: ";")
        let request = [method, path.isEmpty ? "/" : path, canonicalQuery(query), canonicalHeaders, signed, payloadSHA256].joined(separator: "\n")
        return (request, signed)
    }

    /// "AWS4-HMAC-SHA256\n<amzDate>\n<scope>\n<hex SHA-256 of the canonical request>".
    public static func stringToSign(amzDate: String, scope: String, canonicalRequest: String) -> String {
        "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n" + hex(SHA256.hash(data: Data(canonicalRequest.utf8)))
    }

    /// HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request").
    public static func signingKey(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        var k = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            k = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: k)))
        }
        return k
    }

    /// Query parameters URI-encoded (names and values), sorted by name then value, joined as
    /// `a=1&b=&c=x%20y` (a parameter without a value signs as `name=`).
    public static func canonicalQuery(_ items: [(String, String)]) -> String {
        items.map { (uriEncode($0.0, encodeSlash: true), uriEncode($0.1, encodeSlash: true)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// AWS URI encoding: the unreserved characters A-Z a-z 0-9 `-` `.` `_` `~` as they are, every
    /// other UTF-8 byte as `%XX` (upper-case hex): a space is `%20` (never `+`), `+` is `%2B`,
    /// `=` is `%3D`. `/` is kept in object key paths (`encodeSlash: false`) and encoded elsewhere.
    public static func uriEncode(_ s: String, encodeSlash: Bool) -> String {
        let hexd = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(b)
            default:
                out.append(UInt8(ascii: "%")); out.append(hexd[Int(b >> 4)]); out.append(hexd[Int(b & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `20130524T000000Z` (UTC).
    public static func amzDate(_ d: Date) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: d)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// Leading and trailing spaces removed, inner runs of spaces collapsed to one.
    static func trimHeaderValue(_ v: String) -> String {
        v.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    static func hex<D: Sequence>(_ d: D) -> String where D.Element == UInt8 {
        let hexd = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in d { out.append(hexd[Int(b >> 4)]); out.append(hexd[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
