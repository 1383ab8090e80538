import Foundation
import EpipeCore

/// Stage metrics as HTML: the numbers a scientist checks first as cards, the nested ones each
/// stage writes (denoise's per-channel QC, cluster sizes and phenotypes, stats frequencies and top
/// pairs) as tables, and every other key in a generic table, so nothing in a manifest is hidden.
enum MetricsHTML {
    /// Metrics of `stage` as HTML (escaped), channel rows flagged with `warnings`.
    static func render(stage: String, metrics m: [String: JSONValue], warnings: [String]) -> String {
        var out = cards(stage: stage, m)
        var shown: Set<String> = ["warnings"]
        switch stage {
        case "denoise":
            if m["per_channel"] != nil { out += perChannel(m, warnings: warnings); shown.formUnion(["per_channel", "recipe"]) }
        case "cluster":
            if let sizes = m["cluster_sizes"]?.arrayValue {
                out += clusters(sizes: sizes.map { $0.doubleValue ?? 0 }, phenotypes: m["phenotypes"]?.arrayValue?.map { $0.stringValue ?? "" } ?? [])
                shown.formUnion(["cluster_sizes", "phenotypes"])
            }
        case "stats":
            if let f = m["frequencies"]?.objectValue { out += frequencies(f); shown.insert("frequencies") }
            for (key, title) in [("top_enriched", "Most enriched pairs"), ("top_depleted", "Most depleted pairs")] {
                if let rows = m[key]?.arrayValue, !rows.isEmpty { out += "<h3>\(title)</h3>" + objectTable(rows); shown.insert(key) }
            }
        default: break
        }
        let rest = m.filter { !shown.contains($0.key) }
        if !rest.isEmpty {
            out += "<details\(stage == "denoise" || stage == "cluster" || stage == "stats" ? "" : " open")><summary>\(shown.count > 1 ? "Other metrics" : "Metrics") (\(rest.count))</summary>"
            out += keyValue(rest) + "</details>"
        }
        return out
    }

    /// The headline numbers of each stage, those it has.
    static func cards(stage: String, _ m: [String: JSONValue]) -> String {
        var c: [(String, String)] = []
        func add(_ key: String, _ label: String) { if let v = m[key], let t = scalar(v) { c.append((t, label)) } }
        switch stage {
        case "denoise":
            add("channels", "channels")
            if let w = m["width"]?.doubleValue, let h = m["height"]?.doubleValue { c.append((HTML.num(w) + " × " + HTML.num(h), "pixels")) }
            let blank = ChannelQC.list(m).filter { $0.blank }.map { $0.name }
            if !blank.isEmpty { c.append((String(blank.count), "blank: " + blank.joined(separator: ", "))) }
        case "segment":
            add("cells", "cells"); add("cells_per_mm2", "cells / mm²"); add("median_area_px", "median area (px)")
            add("nucleus_diameter_px", "nucleus diameter (px)"); add("fraction_segmented", "fraction segmented"); add("source_tool", "source tool")
        case "cluster":
            add("cells", "cells"); add("method", "method")
            if let s = m["cluster_sizes"]?.arrayValue { c.append((String(s.count), "clusters")) }
            if let q = m["quality"]?.objectValue, let v = q["value"]?.doubleValue { c.append((HTML.num(v), q["name"]?.stringValue ?? "quality")) }
        case "stats":
            add("cells", "cells"); add("types", "cell types"); add("pairs_enriched_q05", "pairs enriched (q < 0.05)")
            add("pairs_depleted_q05", "pairs depleted (q < 0.05)"); add("neighborhoods", "neighbourhoods"); add("isolated_cells", "isolated cells")
        default: break
        }
        let w = m["warnings"]?.arrayValue?.count ?? 0
        if w > 0 { c.append((String(w), w == 1 ? "warning" : "warnings")) }
        guard !c.isEmpty else { return "" }
        return "<div class=\"cards\">" + c.map { "<div class=\"card\"><b>\(HTML.esc($0.0))</b><span>\(HTML.esc($0.1))</span></div>" }.joined() + "</div>"
    }

    /// Denoise's per-channel QC: one row a channel, in channel order; before and after side by side,
    /// then the recipe of each channel.
    static func perChannel(_ m: [String: JSONValue], warnings: [String]) -> String {
        let ch = ChannelQC.list(m)
        let pairs: [(String, String, String)] = [("background_before", "background_after", "background (p10)"), ("p99_before", "p99_after", "p99"),
                                                 ("mean_before", "mean_after", "mean")]
        let singles: [(String, String)] = [("signal_to_background", "signal / background"), ("focus", "focus"),
                                           ("hot_pixels_replaced", "hot pixels"), ("saturated_fraction", "saturated")]
        let known = Set(pairs.flatMap { [$0.0, $0.1] } + singles.map { $0.0 } + ["blank", "processed"])
        let others = Array(Set(ch.flatMap { $0.values.keys }).subtracting(known)).sorted()
        func v(_ c: ChannelQC, _ k: String) -> String { c.values[k].flatMap(scalar).map(HTML.esc) ?? "—" }
        var s = "<h3>Per channel</h3><div class=\"wrap\"><table><thead><tr><th>channel</th>"
        s += pairs.map { "<th class=\"n\">\(HTML.esc($0.2))<br><span class=\"muted\">before → after</span></th>" }.joined()
        s += singles.map { "<th class=\"n\">\(HTML.esc($0.1))</th>" }.joined()
        s += others.map { "<th class=\"n\">\(HTML.esc($0.replacingOccurrences(of: "_", with: " ")))</th>" }.joined()
        s += "<th>blank</th></tr></thead><tbody>"
        for c in ch {
            let warn = warnings.first { $0.hasPrefix(c.name + ": ") }
            s += "<tr><th\(warn.map { " class=\"warn\" title=\"\(HTML.esc($0))\"" } ?? "")>\(HTML.esc(c.name))\(warn != nil ? " ⚠" : "")</th>"
            s += pairs.map { "<td class=\"n\">\(v(c, $0.0)) → \(v(c, $0.1))</td>" }.joined()
            s += singles.map { "<td class=\"n\">\(v(c, $0.0))</td>" }.joined()
            s += others.map { "<td class=\"n\">\(c.values[$0].map(text) ?? "—")</td>" }.joined()
            s += "<td>\(c.blank ? "<b>blank</b>" : "no")</td></tr>"
        }
        s += "</tbody></table></div>"
        let recipe = m["recipe"]?.arrayValue?.compactMap { $0.stringValue } ?? []
        if !recipe.isEmpty { s += "<h3>Recipe</h3><ul class=\"recipe\">" + recipe.map { "<li>\(HTML.esc($0))</li>" }.joined() + "</ul>" }
        return s
    }

    /// Cluster sizes with their phenotypes and share of cells, largest first as the stage lists them.
    static func clusters(sizes: [Double], phenotypes: [String]) -> String {
        let total = max(sizes.reduce(0, +), 1)
        let top = sizes.max() ?? 1
        var s = "<h3>Clusters</h3><div class=\"wrap\"><table><thead><tr><th class=\"n\">#</th><th>phenotype</th><th class=\"n\">cells</th><th class=\"n\">share</th><th></th></tr></thead><tbody>"
        for (i, n) in sizes.enumerated() {
            let p = i < phenotypes.count ? phenotypes[i] : ""
            s += "<tr><td class=\"n\">\(i)</td><td>\(HTML.esc(p))</td><td class=\"n\">\(HTML.num(n))</td><td class=\"n\">\(percent(n / total))</td>\(bar(n / max(top, 1)))</tr>"
        }
        return s + "</tbody></table></div>"
    }

    /// Cell-type frequencies, most frequent first.
    static func frequencies(_ f: [String: JSONValue]) -> String {
        let rows = f.compactMap { k, v in v.doubleValue.map { (k, $0) } }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        let top = rows.first?.1 ?? 1
        var s = "<h3>Cell-type frequencies</h3><div class=\"wrap\"><table><thead><tr><th>cell type</th><th class=\"n\">share</th><th></th></tr></thead><tbody>"
        for (k, v) in rows { s += "<tr><td>\(HTML.esc(k))</td><td class=\"n\">\(percent(v))</td>\(bar(v / max(top, 1e-12)))</tr>" }
        return s + "</tbody></table></div>"
    }

    static func percent(_ x: Double) -> String { x.isFinite ? String(format: "%.1f%%", 100 * x) : "—" }
    static func bar(_ x: Double) -> String {
        let w = x.isFinite ? max(0, min(100, 100 * x)) : 0
        return "<td><div class=\"bar\"><i style=\"width:\(String(format: "%.1f", w))%\"></i></div></td>"
    }

    /// Objects as a table: one row each, the union of their keys as columns (first seen first).
    static func objectTable(_ rows: [JSONValue]) -> String {
        var keys: [String] = []
        for r in rows { for k in (r.objectValue ?? [:]).keys.sorted() where !keys.contains(k) { keys.append(k) } }
        var s = "<div class=\"wrap\"><table><thead><tr>" + keys.map { "<th>\(HTML.esc($0))</th>" }.joined() + "</tr></thead><tbody>"
        for r in rows {
            let o = r.objectValue ?? [:]
            s += "<tr>" + keys.map { k in
                let v = o[k]
                var numeric = false
                if case .number? = v { numeric = true }
                return "<td\(numeric ? " class=\"n\"" : "")>\(v.map(text) ?? "—")</td>"
            }.joined() + "</tr>"
        }
        return s + "</tbody></table></div>"
    }

    /// Every key with its value, sorted by key.
    static func keyValue(_ m: [String: JSONValue]) -> String {
        "<div class=\"wrap\"><table class=\"kv\"><tbody>" + m.keys.sorted().map { k in
            "<tr><th>\(HTML.esc(k))</th><td>\(text(m[k]!))</td></tr>"
        }.joined() + "</tbody></table></div>"
    }

    /// A scalar as plain (unescaped) text; nil for arrays, objects and null.
    static func scalar(_ v: JSONValue) -> String? {
        switch v {
        case .number(let d): return HTML.num(d)
        case .string(let s): return s
        case .bool(let b): return b ? "yes" : "no"
        case .null, .array, .object: return nil
        }
    }

    /// Any value as escaped HTML: scalars as text, lists of scalars joined, objects of scalars as
    /// "key: value" pairs, lists of objects and objects of objects as nested tables.
    static func text(_ v: JSONValue) -> String {
        if let s = scalar(v) { return HTML.esc(s) }
        switch v {
        case .null: return "<span class=\"muted\">null</span>"
        case .array(let a):
            if a.isEmpty { return "<span class=\"muted\">none</span>" }
            if a.allSatisfy({ $0.objectValue != nil }) { return objectTable(a) }
            return a.map(text).joined(separator: ", ")
        case .object(let o):
            if o.isEmpty { return "<span class=\"muted\">none</span>" }
            if o.values.allSatisfy({ $0.objectValue != nil }) {
                return objectTable(o.keys.sorted().map { k in .object(["": .string(k)].merging(o[k]!.objectValue!) { a, _ in a }) })
            }
            return o.keys.sorted().map { "\(HTML.esc($0)): \(text(o[$0]!))" }.joined(separator: "; ")
        default: return ""
        }
    }
}
