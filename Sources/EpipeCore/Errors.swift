import Foundation
import EpipeKernels

/// An error a user can act on. `exitCode` 2 = usage or bad input, 1 = the job failed.
/// `message` is one line: whatever it quotes from a file or a name, line breaks and control
/// characters included, is made printable (`Markup.oneLine`).
public struct EpipeError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case badInput, failed }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = Markup.oneLine(message) }
    public static func badInput(_ m: String) -> EpipeError { EpipeError(.badInput, m) }
    public static func failed(_ m: String) -> EpipeError { EpipeError(.failed, m) }
    public var description: String { message }
    public var exitCode: Int32 { kind == .badInput ? 2 : 1 }
}

