import Foundation
import EpipeCore
import EpipeImage

/// What one input did to a parser.
public enum FuzzOutcome: Equatable, Sendable, CustomStringConvertible {
    /// The input was read; a short summary of what was read.
    case accepted(String)
    /// The input was refused with one clear line (the message).
    case refused(String)
    /// The parser broke the project's rule for bad input: a refusal that is not one clear line or
    /// not a bad-input error, or a result that contradicts itself. The libFuzzer drivers trap on it.
    case defect(String)

    public var description: String {
        switch self {
        case .accepted(let s): return "accepted: \(s)"
        case .refused(let s): return "refused: \(s)"
        case .defect(let s): return "DEFECT: \(s)"
        }
    }
    public var isDefect: Bool { if case .defect = self { return true }; return false }
}

/// The fuzz targets: one entry function each, the same for the libFuzzer drivers (Tests/Fuzz,
/// built with -sanitize=fuzzer,address) and for the regression tests (EpipeFuzzTests, a normal build).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// ImageReader on a file holding the input (TIFF, BigTIFF, OME-TIFF, QPTIFF; striped or tiled).
    case tiff
    /// The ImageDescription parsers (OME-XML, PerkinElmer QPI) alone and inside a small TIFF.
    case omexml
    /// markers.csv: EpipeImage's Markers and EpipeStage's MarkerTable.
    case markers
    /// job.json, <stage>/manifest.json, epipe.json, ledger entries, events; job params per stage.
    case manifest
    /// Per-cell tables: CSV.parse, CSVTable, the streaming CSVColumns/CSVStream, CellTable
    /// (ingest --cells), and cluster's gates, workflow and names files.
    case csv

    /// Runs one input through the target.
    public func run(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
        switch self {
        case .tiff: return TIFFFuzz.run(data)
        case .omexml: return XMLFuzz.run(data)
        case .markers: return MarkersFuzz.run(data)
        case .manifest: return ManifestFuzz.run(data)
        case .csv: return CSVFuzz.run(data)
        }
    }

    public func run(_ data: Data) -> FuzzOutcome { data.withUnsafeBytes { run($0) } }
}

/// Shared checks.
enum Check {
    /// A thrown error as an outcome: a bad-input error whose message is one clear line is a
    /// refusal; anything else is a defect.
    static func refusal(_ error: Error) -> FuzzOutcome {
        let message: String
        switch error {
        case let e as ImageError: message = e.description
        case let e as EpipeError:
            guard e.kind == .badInput else { return .defect("refused as a failed job (exit 1), not bad input: \(e.message)") }
            message = e.message
        default:
            return .defect("error of type \(type(of: error)) escaped (not ImageError/EpipeError): \(error)")
        }
        if let bad = oneLineProblem(message) { return .defect("refusal is not one clear line (\(bad)): \(message.debugDescription)") }
        return .refused(message)
    }

    /// Why `s` is not one clear line, or nil.
    static func oneLineProblem(_ s: String) -> String? {
        if s.trimmingCharacters(in: .whitespaces).isEmpty { return "empty" }
        for u in s.unicodeScalars where u.value < 0x20 || u.value == 0x7F {
            return "control character U+\(String(u.value, radix: 16, uppercase: true))"
        }
        return nil
    }

    /// The input as text the way a file is read by Foundation (UTF-8, repaired).
    static func text(_ data: UnsafeRawBufferPointer) -> String { String(decoding: data, as: UTF8.self) }
}
