import Foundation
import EpipeKernels

/// SCIMAP-style marker gating (the "rules" method of epipe-cluster): a per-marker gate (manual or
/// a Gaussian-mixture automatic one), SCIMAP's rescaling that puts every gate at 0.5, and SCIMAP's
/// phenotype workflow (a hierarchy of parent -> phenotype rules with pos/neg/allpos/allneg/anypos/
/// anyneg marker conditions). Reproduces scimap 2.3.6's `sm.pp.rescale` and `sm.tl.phenotype_cells`
/// label for label (checked on scimap's own example table, see GatingTests).
///
/// This file: the types and the two parsers (workflow CSV, gates CSV). GatingRun.swift: rescaling,
/// the automatic gate and the phenotyping.
public enum Gating {
    /// A marker condition keyword of the workflow file. How each one scores a cell is documented
    /// on `Gating.phenotype(scaled:...)`.
    public enum Kind: String, Sendable, CaseIterable {
        case pos, neg, allpos, allneg, anypos, anyneg
    }

    /// One marker condition of a rule: `marker` indexes `Workflow.markers`.
    public struct Condition: Sendable, Equatable {
        public var marker: Int
        public var kind: Kind
        public init(marker: Int, kind: Kind) { self.marker = marker; self.kind = kind }
    }

    /// One row of the workflow: cells labelled `parent` (or all cells, for the root) that score
    /// best on `conditions` become `phenotype`. `conditions` are in header (column) order.
    public struct Rule: Sendable, Equatable {
        public var parent: String
        public var phenotype: String
        public var conditions: [Condition]
        /// The record number in the workflow file (the header is 1), for messages.
        public var row: Int
        public init(parent: String, phenotype: String, conditions: [Condition], row: Int = 0) {
            self.parent = parent; self.phenotype = phenotype; self.conditions = conditions; self.row = row
        }
        /// The markers (indexes into `Workflow.markers`) of one kind, in column order.
        public func markers(_ kind: Kind) -> [Int] { conditions.filter { $0.kind == kind }.map(\.marker) }
    }

    /// A parsed phenotype workflow.
    public struct Workflow: Sendable {
        public var rules: [Rule]
        /// The marker columns named in the header, in order (some may be unused by every rule).
        public var markers: [String]
        /// The parents in the order SCIMAP gates them: order of first appearance in the parent
        /// column. The first is the root (the first row's parent, usually "all"), gated on all cells.
        public var groups: [String]
        public var root: String { groups[0] }

        public init(rules: [Rule], markers: [String]) {
            self.rules = rules; self.markers = markers
            var seen = Set<String>(), g: [String] = []
            for r in rules where seen.insert(r.parent).inserted { g.append(r.parent) }
            groups = g
        }

        /// Parses SCIMAP's phenotype_workflow.csv. Header: two cells (ignored; usually empty), then
        /// one marker name per column. Each further row: parent, phenotype, then per marker column a
        /// keyword (pos, neg, allpos, allneg, anypos, anyneg; exact lower case as SCIMAP compares
        /// them) or nothing. Names and keywords are trimmed of surrounding blanks; a leading byte
        /// order mark is dropped; blank lines are skipped. `available`: the marker columns of the
        /// cell table.
        ///
        /// Throws `Gating.Invalid` (one line naming the row, column or value) for: an empty or
        /// duplicate marker column in the header that a rule uses, an unknown keyword, a keyword
        /// beyond the header's last column, a marker not in `available`, a row without parent or
        /// phenotype, a row with no keyword (SCIMAP would divide by zero), a duplicate (parent,
        /// phenotype), a parent that no rule defines (other than the root, the first row's parent),
        /// a cycle of parents, and a parent whose rows SCIMAP would gate before the rows that
        /// define it (SCIMAP walks parents in order of first appearance and would silently never
        /// refine the cells defined later: move such rows below their parent's definition).
        ///
        /// A parent is defined by a rule that has it as phenotype, or as `P-rest` where P is a
        /// parent (the cells of P that match none of P's phenotypes, e.g. "T cells-rest" in
        /// SCIMAP's example), or as `likely-X` for a rule X with several pos or several neg markers.
        public static func parse(_ text: String, available: [String]) throws -> Workflow {
            let records = CSV.parse(text)
            guard let hi = records.firstIndex(where: { !isBlank($0) }) else { throw Invalid("phenotype workflow: the file is empty") }
            let header = records[hi].map(trim)
            guard header.count >= 3 else {
                throw Invalid("phenotype workflow row \(hi + 1): the header needs two leading cells and at least one marker column, found \(header.count) cell(s)")
            }
            let markers = Array(header[2...])
            let availableSet = Set(available)
            var firstColumn: [String: Int] = [:]
            for (j, m) in markers.enumerated() where !m.isEmpty && firstColumn[m] == nil { firstColumn[m] = j }

            var rules: [Rule] = []
            var seenRule: [String: Int] = [:]   // "parent\u{0}phenotype" -> row
            var checkedMarker = Set<Int>()
            for ri in (hi + 1)..<records.count {
                let rec = records[ri], row = ri + 1
                if rec.count == 1 && trim(rec[0]).isEmpty { continue }  // blank line
                let cells = rec.map(trim)
                if cells.allSatisfy(\.isEmpty) { throw Invalid("phenotype workflow row \(row) is empty (only separators)") }
                let parent = cells[0], pheno = cells.count > 1 ? cells[1] : ""
                if parent.isEmpty { throw Invalid("phenotype workflow row \(row): no parent in the first cell (phenotype '\(pheno)')") }
                if pheno.isEmpty { throw Invalid("phenotype workflow row \(row): no phenotype name in the second cell (parent '\(parent)')") }
                var conds: [Condition] = []
                for j in 2..<max(2, cells.count) where !cells[j].isEmpty {
                    let v = cells[j], mi = j - 2
                    guard mi < markers.count else {
                        throw Invalid("phenotype workflow row \(row) ('\(parent)' -> '\(pheno)'), column \(j + 1): keyword '\(v)' beyond the header's last marker column")
                    }
                    let name = markers[mi]
                    guard let kind = Kind(rawValue: v) else {
                        throw Invalid("phenotype workflow row \(row) ('\(parent)' -> '\(pheno)'), column \(name.isEmpty ? "\(j + 1)" : name): unknown keyword '\(v)' (expected pos, neg, allpos, allneg, anypos or anyneg)")
                    }
                    if !checkedMarker.contains(mi) {
                        if name.isEmpty { throw Invalid("phenotype workflow row \(row): column \(j + 1) has a keyword but no marker name in the header") }
                        if firstColumn[name] != mi { throw Invalid("phenotype workflow row \(row): marker '\(name)' is named by two header columns (\(firstColumn[name]! + 3) and \(j + 1))") }
                        if !availableSet.contains(name) { throw Invalid("phenotype workflow row \(row) ('\(parent)' -> '\(pheno)'): marker '\(name)' is not a column of the cell table") }
                        checkedMarker.insert(mi)
                    }
                    conds.append(Condition(marker: mi, kind: kind))
                }
                if conds.isEmpty { throw Invalid("phenotype workflow row \(row) ('\(parent)' -> '\(pheno)'): no marker keyword; a rule needs at least one") }
                if pheno == parent { throw Invalid("phenotype workflow row \(row): cycle of parents: '\(parent)' is its own parent") }
                let key = parent + "\u{0}" + pheno
                if let first = seenRule[key] { throw Invalid("phenotype workflow row \(row): duplicate rule '\(parent)' -> '\(pheno)' (first in row \(first))") }
                seenRule[key] = row
                rules.append(Rule(parent: parent, phenotype: pheno, conditions: conds, row: row))
            }
            guard !rules.isEmpty else { throw Invalid("phenotype workflow: no rules below the header") }
            let wf = Workflow(rules: rules, markers: markers)
            try wf.checkHierarchy()
            return wf
        }

        /// For each parent, the parents whose labels it refines (see `parse`), with the row that
        /// makes the link.
        func producers() -> [[(group: Int, row: Int)]] {
            var gi: [String: Int] = [:]
            for (i, g) in groups.enumerated() { gi[g] = i }
            var out = [[(group: Int, row: Int)]](repeating: [], count: groups.count)
            for r in rules {
                let p = gi[r.parent]!
                if let c = gi[r.phenotype] { out[c].append((p, r.row)) }
                if r.markers(.pos).count > 1 || r.markers(.neg).count > 1, let c = gi["likely-" + r.phenotype] { out[c].append((p, r.row)) }
            }
            for (i, g) in groups.enumerated() {
                if let c = gi[g + "-rest"] { out[c].append((i, firstRow(of: g))) }
            }
            return out
        }

        func firstRow(of group: String) -> Int { rules.first { $0.parent == group }!.row }

        func checkHierarchy() throws {
            let prod = producers()
            for (i, g) in groups.enumerated() where i > 0 && prod[i].isEmpty {
                throw Invalid("phenotype workflow row \(firstRow(of: g)): parent '\(g)' is never defined (no rule has it as phenotype, and only the first row's parent '\(root)' may be undefined)")
            }
            // Cycles: depth-first search over parent -> child edges.
            var children = [[Int]](repeating: [], count: groups.count)
            for (c, ps) in prod.enumerated() { for p in ps { children[p.group].append(c) } }
            var state = [UInt8](repeating: 0, count: groups.count)  // 0 new, 1 on stack, 2 done
            var stack: [Int] = []
            func visit(_ v: Int) throws {
                state[v] = 1; stack.append(v)
                for c in children[v] {
                    if state[c] == 1 {
                        let cyc = stack[stack.lastIndex(of: c)!...].map { groups[$0] } + [groups[c]]
                        throw Invalid("phenotype workflow row \(firstRow(of: groups[c])): cycle of parents: " + cyc.map { "'\($0)'" }.joined(separator: " -> "))
                    }
                    if state[c] == 0 { try visit(c) }
                }
                stack.removeLast(); state[v] = 2
            }
            for v in 0..<groups.count where state[v] == 0 { try visit(v) }
            // Order: SCIMAP gates a parent once, in order of first appearance.
            for (i, g) in groups.enumerated() {
                for p in prod[i] where p.group >= i {
                    throw Invalid("phenotype workflow row \(firstRow(of: g)): parent '\(g)' is gated before row \(p.row) defines it under '\(groups[p.group])' (parents are gated in order of first appearance; move the rows of '\(g)' below row \(p.row))")
                }
            }
        }
    }

    /// A workflow or gates file that cannot be used: `message` is one line naming the row or line,
    /// the column and the value.
    public struct Invalid: Error, Sendable, CustomStringConvertible, Equatable {
        public let message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// Manual gates from a CSV of `marker,gate` lines, on the scale of the values gated (for
    /// SCIMAP's `log=True`, the log1p scale). A first line whose first cell is not a marker and
    /// whose second cell is not a number is a header (SCIMAP's "markers,gates", or "marker,gate").
    /// An empty gate leaves the marker to the automatic gate (as SCIMAP does with a NaN gate).
    /// Throws `Invalid` naming the line for a gate that is not a finite number, a marker not in
    /// `available`, a marker given twice, or a third non-empty column (per-image gate columns are
    /// not supported).
    public static func parseGates(_ text: String, available: [String]) throws -> [String: Double] {
        let avail = Set(available)
        var out: [String: Double] = [:], lineOf: [String: Int] = [:]
        var first = true
        for (ri, rec) in CSV.parse(text).enumerated() {
            let line = ri + 1
            if isBlank(rec) { continue }
            let cells = rec.map(trim)
            let isHeader = first && !avail.contains(cells[0]) && (cells.count < 2 || number(cells[1]) == nil)
            first = false
            if isHeader { continue }
            if cells.count > 2, cells[2...].contains(where: { !$0.isEmpty }) {
                throw Invalid("gates line \(line): more than two columns (one marker and one gate per line; per-image gates are not supported)")
            }
            let m = cells[0], v = cells.count > 1 ? cells[1] : ""
            guard !m.isEmpty else { throw Invalid("gates line \(line): no marker name in the first cell") }
            guard avail.contains(m) else { throw Invalid("gates line \(line): marker '\(m)' is not a column of the cell table") }
            if let l = lineOf[m] { throw Invalid("gates line \(line): marker '\(m)' is given twice (first on line \(l))") }
            lineOf[m] = line
            if v.isEmpty { continue }
            guard let g = number(v) else { throw Invalid("gates line \(line): gate '\(v)' of marker '\(m)' is not a number") }
            out[m] = g
        }
        return out
    }

    static func trim(_ s: String) -> String { s.trimmingCharacters(in: .whitespaces) }
    static func isBlank(_ rec: [String]) -> Bool { rec.count == 1 && trim(rec[0]).isEmpty }
    static func number(_ s: String) -> Double? {
        guard let v = Double(s), v.isFinite else { return nil }
        return v
    }
}
