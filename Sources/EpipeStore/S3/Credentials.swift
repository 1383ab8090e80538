import Foundation
import EpipeCore

/// An S3 access key pair (and session token, for temporary credentials). Printing it never
/// shows the secret or the token: `description`, `debugDescription` and the reflection that
/// `dump` and string interpolation use all give the key id and where it came from only.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let accessKeyId: String
    /// Used only to derive the signing key; never printed or put in a message.
    public let secretAccessKey: String
    /// `AWS_SESSION_TOKEN` / `aws_session_token`; sent as `x-amz-security-token`, never printed.
    public let sessionToken: String?
    /// Where they were read: "environment" or "<file> [profile]".
    public let source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "given") {
        self.accessKeyId = accessKeyId; self.secretAccessKey = secretAccessKey
        self.sessionToken = (sessionToken?.isEmpty ?? true) ? nil : sessionToken
        self.source = source
    }

    public var description: String {
        "S3Credentials(accessKeyId: \(accessKeyId), secret: <redacted>\(sessionToken == nil ? "" : ", session token: <redacted>"), from \(source))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyId": accessKeyId, "secretAccessKey": "<redacted>", "source": source], displayStyle: .struct)
    }

    /// The credentials a command line uses, the way the AWS CLI finds them:
    /// 1. `profile` given (`--profile`): that profile of the shared credentials file;
    /// 2. else `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
    /// 3. else the profile `AWS_PROFILE` (default `default`) of the shared credentials file,
    ///    `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials` (INI: `[name]` sections with
    ///    `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`).
    /// Throws `.badInput` (one line, saying where it looked) when none are found or half set.
    public static func resolve(profile: String? = nil, environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Credentials {
        let file = credentialsFile(env)
        if let p = profile, !p.isEmpty { return try fromFile(file, profile: p) }
        let id = env["AWS_ACCESS_KEY_ID"] ?? "", secret = env["AWS_SECRET_ACCESS_KEY"] ?? ""
        if !id.isEmpty || !secret.isEmpty {
            guard !id.isEmpty, !secret.isEmpty else {
                throw EpipeError.badInput("S3 credentials: \(id.isEmpty ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") is set but \(id.isEmpty ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") is not; set both or neither (to use \(file))")
            }
            return S3Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: env["AWS_SESSION_TOKEN"], source: "environment")
        }
        let p = env["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        do { return try fromFile(file, profile: p) } catch let e as EpipeError {
            throw EpipeError.badInput("no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and \(e.message.replacingOccurrences(of: "S3 credentials: ", with: "")); set them, or pass --profile")
        }
    }

    /// `AWS_SHARED_CREDENTIALS_FILE`, else `$HOME/.aws/credentials`.
    public static func credentialsFile(_ env: [String: String]) -> String {
        if let f = env["AWS_SHARED_CREDENTIALS_FILE"], !f.isEmpty { return f }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.aws/credentials"
    }

    /// One profile of an INI credentials file (`[name]`, or `[profile name]` as in ~/.aws/config).
    public static func fromFile(_ path: String, profile: String) throws -> S3Credentials {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw EpipeError.badInput("S3 credentials: \(path) does not exist or cannot be read (looked for profile [\(profile)])")
        }
        var section: String? = nil
        var found = false
        var values: [String: String] = [:]
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
                section = name
                if name == profile { found = true }
                continue
            }
            guard section == profile, let eq = line.firstIndex(of: "=") else { continue }
            let k = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let v = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            values[k] = v
        }
        guard found else { throw EpipeError.badInput("S3 credentials: \(path) has no profile [\(profile)]") }
        let id = values["aws_access_key_id"] ?? "", secret = values["aws_secret_access_key"] ?? ""
        guard !id.isEmpty, !secret.isEmpty else {
            throw EpipeError.badInput("S3 credentials: profile [\(profile)] of \(path) lacks \(id.isEmpty ? "aws_access_key_id" : "aws_secret_access_key")")
        }
        return S3Credentials(accessKeyId: id, secretAccessKey: secret, sessionToken: values["aws_session_token"], source: "\(path) [\(profile)]")
    }
}
