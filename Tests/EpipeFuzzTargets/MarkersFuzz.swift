import Foundation
import EpipeImage
import EpipeStage
import EpipeDenoise

/// markers.csv as epipe reads it: EpipeImage's `Markers` (the channel names the reader takes) and
/// EpipeStage's `MarkerTable` (cycles, blank channels, MCMICRO's background column) for an image
/// with those channels; the same file for an image with one channel fewer must be refused.
enum MarkersFuzz {
    static func run(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
        let path = FuzzFile.write(data, name: "markers.csv")
        let names: [String]
        do {
            let t = try Markers.table(csvPath: path)
            if t.header.contains(where: { $0 != $0.lowercased() || $0 != $0.trimmingCharacters(in: .whitespaces) }) {
                return .defect("header not trimmed and lower-cased: \(t.header)")
            }
            names = try Markers.read(csvPath: path)
            guard names == (try t.names()) else { return .defect("Markers.read and Table.names disagree") }
            guard names.count == t.rows.count else { return .defect("\(names.count) names for \(t.rows.count) rows") }
        } catch {
            return Check.refusal(error)
        }
        let table: MarkerTable
        do {
            table = try MarkerTable(names: names, csvPath: path, blankPattern: DenoiseParams.defaultBlankPattern)
        } catch {
            return Check.refusal(error)
        }
        guard table.blank.count == names.count, table.background.count == names.count, (table.cycles?.count ?? names.count) == names.count else {
            return .defect("MarkerTable columns do not have one value per channel: \(table)")
        }
        for case let b? in table.background where !names.contains(b) {
            return .defect("background \(b.debugDescription) is not a channel")
        }
        if !names.isEmpty {
            do {
                _ = try MarkerTable(names: Array(names.dropLast()), csvPath: path, blankPattern: DenoiseParams.defaultBlankPattern)
                return .defect("a markers.csv of \(names.count) markers was taken for \(names.count - 1) channels")
            } catch {
                if case .defect(let d) = Check.refusal(error) { return .defect(d) }
            }
        }
        let blanks = table.blank.filter { $0 }.count
        return .accepted("\(names.count) markers, \(blanks) blank, cycles \(table.cycles.map { "\($0.count)" } ?? "-")")
    }
}
