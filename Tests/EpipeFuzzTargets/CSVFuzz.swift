import Foundation
import EpipeCore
import EpipeKernels
import EpipeStore
import EpipeCluster

/// Per-cell tables and the CSV files around them:
/// - `CSV.parse` (EpipeKernels), and what it parses written with `CSV.quote` parses the same;
/// - `CSVTable.read` (EpipeCore) and the streaming `CSVStream.head` / `CSVColumns.read` that
///   epipe-cluster and epipe-stats use, on the file as it is (each one's counts must agree with
///   itself);
/// - `CellTable.normalise` (epipe-ingest --cells); a table it accepts is written as ingest writes
///   it (segment/cells.csv) and read back by the streaming reader as cluster and stats read it:
///   the same header, cells, ids and coordinates;
/// - cluster's side files on the same text: the gates file, the phenotype workflow and the names file.
enum CSVFuzz {
    static func run(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
        let text = Check.text(data)
        var said: [String] = []
        var refusal: String?
        func note(_ error: Error) -> FuzzOutcome? {
            let o = Check.refusal(error)
            if case .refused(let m) = o { refusal = refusal ?? m; return nil }
            return o
        }

        // CSV.parse and its writer
        let records = CSV.parse(text)
        let rendered = records.map { $0.map(CSV.quote).joined(separator: ",") + "\n" }.joined()
        let again = CSV.parse(rendered)
        if let k = records.indices.first(where: { $0 >= again.count || again[$0] != records[$0] }) ?? (again.count > records.count ? records.count : nil) {
            let was = k < records.count ? "\(records[k].map(\.debugDescription))" : "nothing"
            let now = k < again.count ? "\(again[k].map(\.debugDescription))" : "nothing"
            return .defect("CSV.parse of CSV.quote's writing differs: record \(k + 1) of \(records.count) \(was) became \(now)")
        }
        said.append("\(records.count) records")

        // the file as it is
        let path = FuzzFile.write(data, name: "cells.csv")
        do {
            let t = try CSVTable.read(path)
            guard t.rows.allSatisfy({ $0.count == t.header.count }) else { return .defect("CSVTable row with another field count than its header") }
            said.append("table \(t.header.count) x \(t.rows.count)")
        } catch { if let d = note(error) { return d } }
        do {
            let (header, first) = try CSVStream.head(path)
            let cols = try CSVColumns.read(path, numbers: header, strings: header)
            guard cols.header == header else { return .defect("CSVStream.head header \(header) but CSVColumns header \(cols.header)") }
            guard (cols.count == 0) == (first == nil) else { return .defect("CSVStream.head first row \(String(describing: first)) but CSVColumns has \(cols.count) rows") }
            for (k, v) in cols.numbers where v.count != cols.count { return .defect("numbers[\(k)] has \(v.count) values for \(cols.count) rows") }
            for (k, v) in cols.strings where v.count != cols.count { return .defect("strings[\(k)] has \(v.count) values for \(cols.count) rows") }
            said.append("stream \(cols.header.count) x \(cols.count)")
        } catch { if let d = note(error) { return d } }

        // epipe-ingest --cells, then cluster's and stats' reading of what it wrote
        do {
            let n = try CellTable.normalise(data: Data(data), source: "cells.csv")
            let t = n.table
            guard !t.rows.isEmpty, t.rows.allSatisfy({ $0.count == t.header.count }),
                  let ci = t.column("CellID"), let xi = t.column("X_centroid"), let yi = t.column("Y_centroid") else {
                return .defect("normalised table lacks CellID/X_centroid/Y_centroid or has ragged rows: \(t.header)")
            }
            let out = FuzzFile.write(t.render(), name: "segment-cells.csv")
            let (header, _) = try CSVStream.head(out)
            guard header == t.header else { return .defect("the written table's header reads back as \(header), not \(t.header)") }
            let back = try CSVColumns.read(out, numbers: ["X_centroid", "Y_centroid"], strings: ["CellID"])
            guard back.count == t.rows.count else { return .defect("\(t.rows.count) cells written, \(back.count) read back") }
            let ids = t.rows.map { $0[ci] }
            let readIDs = back.strings["CellID"] ?? []
            if let k = ids.indices.first(where: { $0 >= readIDs.count || readIDs[$0] != ids[$0] }) {
                return .defect("CellID \(ids[k].debugDescription) reads back as \(k < readIDs.count ? readIDs[k].debugDescription : "nothing")")
            }
            for (name, i) in [("X_centroid", xi), ("Y_centroid", yi)] {
                let want = t.rows.map { Double($0[i].trimmingCharacters(in: .whitespaces)) ?? .nan }
                let got = back.numbers[name] ?? []
                if let k = want.indices.first(where: { got.count <= $0 || !(got[$0] == want[$0]) }) {
                    return .defect("\(name) \(t.rows[k][i].debugDescription) reads back as \(k < got.count ? got[k] : .nan)")
                }
            }
            said.append("cells \(t.rows.count) (\(n.tool))")
        } catch { if let d = note(error) { return d } }

        // cluster's side files
        let available = (records.first ?? []).map { $0.trimmingCharacters(in: .whitespaces) } + ["CD3", "CD4", "CD8", "CD20", "ECAD", "DAPI"]
        func side(_ file: String, _ body: () throws -> String) -> FuzzOutcome? {
            do { said.append(try body()); return nil }
            catch let e as ClusterInputError { return note(EpipeError.badInput("\(file): \(e.message)")) }
            catch let e as Gating.Invalid { return note(EpipeError.badInput("\(file): \(e.message)")) }
            catch { return note(error) }
        }
        if let d = side("gates.csv", { "gates \(try Gating.parseGates(text, available: available).count)" }) { return d }
        if let d = side("workflow.csv", { "workflow \(try Gating.Workflow.parse(text, available: available).rules.count) rules" }) { return d }
        if let d = side("names.csv", { "names \(try ClusterNames.parse(text, clusters: 20).count)" }) { return d }

        if said.count <= 1, let refusal { return .refused(refusal) }
        return .accepted(said.joined(separator: "; "))
    }
}
