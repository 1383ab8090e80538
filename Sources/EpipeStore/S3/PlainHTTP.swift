import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 exchange over a plain TCP socket, for `http://` endpoints (an on-prem MinIO, Ceph or
/// SeaweedFS inside the lab's network). Why not URLSession there too: on Linux it hands a request body
/// to libcurl in 64 KiB pieces, each through a libdispatch hop with a thread wake-up, which measured a
/// quarter of an upload's CPU on 2 cores (perf: task switches and spin-unlocks around eventfd writes);
/// here the body goes to the kernel in a few large writes. `https://` stays on URLSession (TLS).
/// One connection per exchange (`Connection: close`); the answer is read by Content-Length, chunked
/// transfer coding, or to the end. Transport failures are reported as the URLErrors URLSession would
/// give (refused, reset, timed out, bad answer), so the caller's retry rules apply unchanged.
enum PlainHTTP {
    static func exchange(_ req: URLRequest, timeout: Double) -> (Int, [String: String], Data, Error?) {
        guard let url = req.url, let host = url.host, let comps = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
            return (0, [:], Data(), URLError(.badURL))
        }
        let port = url.port ?? 80
        let fd: Int32
        switch connectTo(host: host, port: port, timeout: timeout) {
        case .success(let f): fd = f
        case .failure(let e): return (0, [:], Data(), e)
        }
        defer { close(fd) }
        let method = req.httpMethod ?? "GET"
        var target = comps.percentEncodedPath.isEmpty ? "/" : comps.percentEncodedPath
        if let q = comps.percentEncodedQuery, !q.isEmpty { target += "?" + q }
        let hostField = host.contains(":") ? "[\(host)]" : host
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(hostField)\(port == 80 ? "" : ":\(port)")\r\n"
        for (k, v) in req.allHTTPHeaderFields ?? [:] where k.lowercased() != "host" && k.lowercased() != "content-length" { head += "\(k): \(v)\r\n" }
        let body = req.httpBody ?? Data()
        if method != "GET" && method != "HEAD" || !body.isEmpty { head += "Content-Length: \(body.count)\r\n" }
        head += "Connection: close\r\n\r\n"
        if !writeAll(fd, Data(head.utf8)) || (!body.isEmpty && !writeAll(fd, body)) {
            return (0, [:], Data(), URLError(errno == EAGAIN || errno == EWOULDBLOCK ? .timedOut : .networkConnectionLost))
        }
        return readResponse(fd, head: method == "HEAD")
    }

    enum Outcome { case success(Int32), failure(URLError) }

    static func connectTo(host: String, port: Int, timeout: Double) -> Outcome {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let first = res else { return .failure(URLError(.cannotFindHost)) }
        defer { freeaddrinfo(res) }
        var ai: UnsafeMutablePointer<addrinfo>? = first
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        while let a = ai {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd >= 0 {
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return .success(fd) }
                close(fd)
            }
            ai = a.pointee.ai_next
        }
        return .failure(URLError(errno == ETIMEDOUT || errno == EINPROGRESS ? .timedOut : .cannotConnectToHost))
    }

    static func writeAll(_ fd: Int32, _ d: Data) -> Bool {
        d.withUnsafeBytes { (p: UnsafeRawBufferPointer) -> Bool in
            var off = 0
            while off < p.count {
                let n = send(fd, p.baseAddress! + off, min(p.count - off, 8 << 20), Int32(MSG_NOSIGNAL))
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
    }

    /// Status, lower-cased headers and body of the answer on `fd`.
    static func readResponse(_ fd: Int32, head isHead: Bool) -> (Int, [String: String], Data, Error?) {
        var buf = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        func more() -> Int {
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n > 0 { buf.append(contentsOf: chunk[0..<n]) }
                return n
            }
        }
        let sep = Data("\r\n\r\n".utf8)
        var headEnd: Range<Data.Index>? = nil
        while headEnd == nil {
            let n = more()
            if n < 0 { return (0, [:], Data(), URLError(errno == EAGAIN || errno == EWOULDBLOCK ? .timedOut : .networkConnectionLost)) }
            if n == 0 { return (0, [:], Data(), URLError(buf.isEmpty ? .networkConnectionLost : .badServerResponse)) }
            headEnd = buf.range(of: sep)
        }
        let lines = String(decoding: buf[buf.startIndex..<headEnd!.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return (0, [:], Data(), URLError(.cannotParseResponse)) }
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(buf[headEnd!.upperBound...])
        if isHead || status == 204 || status == 304 || (100..<200).contains(status) { return (status, headers, Data(), nil) }
        if let cl = headers["content-length"].flatMap({ Int($0) }) {
            buf = body
            while buf.count < cl {
                let n = more()
                if n <= 0 { return (0, [:], Data(), URLError(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? .timedOut : .networkConnectionLost)) }
            }
            return (status, headers, buf.prefix(cl), nil)
        }
        buf = body
        while true {   // to the end of the connection
            let n = more()
            if n < 0 { return (0, [:], Data(), URLError(errno == EAGAIN || errno == EWOULDBLOCK ? .timedOut : .networkConnectionLost)) }
            if n == 0 { break }
        }
        body = buf
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            guard let d = dechunk(body) else { return (0, [:], Data(), URLError(.cannotParseResponse)) }
            body = d
        }
        return (status, headers, body, nil)
    }

    /// The payload of a chunked body (RFC 9112 7.1; extensions and trailers ignored); nil if malformed.
    static func dechunk(_ d: Data) -> Data? {
        var out = Data(), i = d.startIndex
        let crlf = Data("\r\n".utf8)
        while true {
            guard let e = d.range(of: crlf, in: i..<d.endIndex) else { return nil }
            let line = String(decoding: d[i..<e.lowerBound], as: UTF8.self)
            guard let size = Int(line.split(separator: ";").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16) else { return nil }
            i = e.upperBound
            if size == 0 { return out }
            guard d.distance(from: i, to: d.endIndex) >= size + 2 else { return nil }
            out.append(d[i..<d.index(i, offsetBy: size)])
            i = d.index(i, offsetBy: size + 2)
        }
    }
}
