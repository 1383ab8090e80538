import Foundation

/// The frame both pages share: one self-contained document (inline CSS, no fonts, scripts or
/// requests from anywhere else), with a footer that a small script fills after `load`.
enum Page {
    /// `body` is HTML already escaped.
    static func document(title: String, body: String, wide: Bool = false) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="epipe">
        <title>\(HTML.esc(title))</title>
        <link rel="icon" href="data:,">
        <style>\(css)</style>
        <script>\(script)</script>
        </head>
        <body>
        <main\(wide ? " class=\"wide\"" : "")>
        \(body)
        </main>
        <footer\(wide ? " class=\"wide\"" : "")><div id="qc-status" data-images="" data-broken="" data-errors="0"></div></footer>
        </body>
        </html>

        """
    }

    /// Counts the page's pictures that loaded and any script error into #qc-status (data-images,
    /// data-broken, data-errors, data-ready) and says so in the footer. The page needs none of it.
    static let script = """
    (function () {
      var errors = 0;
      function status() { return document.getElementById("qc-status"); }
      window.addEventListener("error", function (e) {
        if (!(e instanceof ErrorEvent)) return;
        errors += 1;
        var s = status(); if (s) s.setAttribute("data-errors", String(errors));
      });
      window.addEventListener("load", function () {
        var imgs = document.images, broken = 0;
        for (var i = 0; i < imgs.length; i++) { if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) broken += 1; }
        var s = status(); if (!s) return;
        s.setAttribute("data-images", String(imgs.length));
        s.setAttribute("data-broken", String(broken));
        s.setAttribute("data-errors", String(errors));
        s.setAttribute("data-ready", "1");
        if (imgs.length > 0) s.textContent = broken === 0 ? "All " + imgs.length + " pictures loaded." : broken + " of " + imgs.length + " pictures did not load.";
        if (broken > 0) s.className = "bad";
      });
    })();
    """

    static let css = """
    :root{--fg:#1d2329;--muted:#5c6670;--line:#d8dde2;--bg:#fff;--soft:#f4f6f8;--ok:#1a7f37;--bad:#c62828;--badbg:#fdecea;--warn:#9a6700;--warnbg:#fff4d6;--run:#0a58ca;--pend:#6c757d}
    *{box-sizing:border-box}
    body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
    main{max-width:1200px;margin:0 auto;padding:16px 20px 8px}
    footer{max-width:1200px;margin:0 auto;padding:8px 20px 24px;color:var(--muted);font-size:12px}
    h1{font-size:22px;margin:4px 0}
    h2{font-size:18px;margin:0 0 8px;display:flex;align-items:center;gap:8px;flex-wrap:wrap}
    h3{font-size:14px;margin:14px 0 6px;color:var(--muted)}
    a{color:var(--run)}
    code,.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12px}
    .muted{color:var(--muted)}
    .sub{color:var(--muted);margin:0 0 12px}
    nav.toc{margin:8px 0 16px;display:flex;gap:12px;flex-wrap:wrap}
    section{border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 16px}
    table{border-collapse:collapse;margin:4px 0 8px}
    th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
    th{background:var(--soft);font-weight:600}
    td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
    table.kv th{width:1%;white-space:nowrap;background:none;color:var(--muted);font-weight:500}
    .wrap{overflow-x:auto;max-width:100%}
    .hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;word-break:break-all}
    .badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;color:#fff;background:var(--pend);white-space:nowrap}
    .cards{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 10px}
    .card{border:1px solid var(--line);border-radius:6px;padding:6px 10px;min-width:110px;background:var(--soft)}
    .card b{display:block;font-size:18px;font-variant-numeric:tabular-nums}
    .card span{color:var(--muted);font-size:12px}
    .note{background:var(--soft);border-left:4px solid var(--pend);padding:8px 12px;margin:6px 0}
    .error{background:var(--badbg);border-left:4px solid var(--bad);padding:8px 12px;margin:6px 0 12px;white-space:pre-wrap;word-break:break-word}
    ul.warnings{background:var(--warnbg);border-left:4px solid var(--warn);margin:6px 0;padding:8px 12px 8px 28px}
    pre.log{background:#111820;color:#e6edf3;padding:8px 12px;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-word;margin:4px 0}
    details{margin:6px 0}
    ul.recipe{margin:4px 0;padding-left:20px;color:var(--muted);font-size:12px}
    summary{cursor:pointer;color:var(--run)}
    .figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));grid-auto-flow:dense;gap:12px;margin:8px 0}
    .figs.two{grid-template-columns:repeat(auto-fill,minmax(480px,1fr))}
    figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:6px;background:var(--soft)}
    figure.wide{grid-column:span 2}
    figure.full{grid-column:1/-1}
    figure img{display:block;max-width:100%;height:auto;margin:0 auto;background:#fff}
    figcaption{font-size:12px;color:var(--muted);margin-top:4px;word-break:break-word}
    figure.missing{background:var(--badbg);color:var(--bad)}
    .bar{background:#dbe4ee;height:10px;border-radius:2px;min-width:80px}
    .bar i{display:block;height:10px;background:#4e79a7;border-radius:2px}
    tr.flagged td:first-child{box-shadow:inset 4px 0 0 var(--bad)}
    tr.warned td:first-child{box-shadow:inset 4px 0 0 var(--warn)}
    td.out{background:var(--badbg);color:var(--bad);font-weight:700;white-space:nowrap}
    td.warn,th.warn{background:var(--warnbg);color:var(--warn)}
    td.out::after{content:" \\2691"}
    td.ch div{padding:0 2px;border-radius:2px}
    td.ch div.bgv{color:var(--muted)}
    td.ch div.out{background:var(--badbg);color:var(--bad);font-weight:700}
    td.ch div.out::after{content:" \\2691"}
    td.ch div.warn{background:var(--warnbg);color:var(--warn)}
    table.jobs th.n{white-space:normal}
    .flags{font-size:12px;min-width:150px;white-space:nowrap}
    ul.flags{white-space:normal}
    .flags .bad{color:var(--bad)}.flags .warn{color:var(--warn)}
    .pills{white-space:nowrap}
    .pill{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:2px;background:var(--pend);vertical-align:middle}
    .legend{font-size:12px;color:var(--muted)}
    table.jobs{font-size:13px}
    table.jobs th{position:sticky;top:0;z-index:1}
    table.jobs td.job{position:sticky;left:0;background:var(--bg);white-space:nowrap}
    footer .bad{color:var(--bad);font-weight:600}
    .badge.st-complete{background:var(--ok)}.badge.st-failed,.badge.st-dead,.badge.st-stale,.badge.st-invalid{background:var(--bad)}.badge.st-running{background:var(--run)}
    .badge.st-interrupted{background:#bf8700}.badge.st-partial{background:#8250df}.badge.st-pending,.badge.st-queued{background:var(--pend)}
    .pill.st-complete{background:var(--ok)}.pill.st-failed,.pill.st-dead,.pill.st-stale,.pill.st-invalid{background:var(--bad)}.pill.st-running{background:var(--run)}
    .pill.st-interrupted{background:#bf8700}.pill.st-partial{background:#8250df}.pill.st-pending,.pill.st-queued{background:var(--pend)}
    main.wide,footer.wide{max-width:none}
    @media (max-width:760px){figure.wide{grid-column:auto}.figs.two{grid-template-columns:1fr}}
    """
}
