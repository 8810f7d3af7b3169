import FileSupport

/// The dashboard's HTML: one self-contained page (its style and its few lines of script inline:
/// nothing is fetched from elsewhere) whose panels the server renders, plots included, as SVG.
/// The script fetches `panels` every two seconds and swaps them in; when the server is gone
/// (the run ended) the page keeps the last panels and says so, and picks up again when a server
/// answers on the same address (a resumed run: its curves continue from the same file).
///
/// Why no charting library: the page must work without internet, so a library would have to be
/// vendored into the binary and kept up to date; a dozen line plots are a hundred lines of SVG
/// here, rendered where the data is, and their points are in the DOM for tests to read.
public enum DashboardPage {
    /// The whole page, with the panels as they are now.
    public static func page(_ runs: [RunMetrics], status: String, title: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(title))</title>
        <style>\(style)</style></head>
        <body><header><h1>\(HTML.escape(title))</h1><span id="connection" class="live">live</span></header>
        <main id="panels">\(panels(runs, status: status))</main>
        <script>\(script)</script></body></html>
        """
    }

    /// The part the page refreshes: status, runs and warnings, settings, prediction against
    /// measurement, layout, plots.
    public static func panels(_ runs: [RunMetrics], status: String) -> String {
        var out = "<section class=\"status\" data-status=\"\(HTML.escape(status))\"><p>\(HTML.escape(status))</p><ul class=\"runs\">"
        for (index, run) in runs.enumerated() {
            let colour = LinePlot.palette[index % LinePlot.palette.count]
            let last = run.lastIteration.map { "iteration \($0)" } ?? "no iteration logged yet"
            let starts = run.starts > 1 ? ", resumed \(run.starts - 1) time\(run.starts == 2 ? "" : "s")" : ""
            out += "<li><span class=\"swatch\" style=\"background:\(colour)\"></span><b>\(HTML.escape(run.name))</b> "
                + "<code>\(HTML.escape(run.path))</code>: \(last), \(run.training.count) logged iterations, "
                + "\(run.validation.count) validations\(starts)</li>"
        }
        out += "</ul>"
        for run in runs where !run.warnings.isEmpty {
            let shown = run.warnings.prefix(5).map(HTML.escape).joined(separator: "; ")
            out += "<p class=\"warning\" data-warnings=\"\(run.warnings.count)\">\(HTML.escape(run.name)): "
                + "\(run.warnings.count) malformed line\(run.warnings.count == 1 ? "" : "s") skipped (\(shown)"
                + (run.warnings.count > 5 ? "; ..." : "") + ")</p>"
        }
        out += "</section>"
        out += "<section class=\"plots\">" + DashboardMetric.all.map { $0.plot(runs).svg }.joined() + "</section>"
        out += "<section class=\"facts\">" + PredictionTable.html(runs) + SettingsTable.html(runs)
        for run in runs {
            out += "<div class=\"panel\"><h2>Parallel layout" + (runs.count > 1 ? ": \(HTML.escape(run.name))" : "") + "</h2>"
                + LayoutGrid.html(run) + "</div>"
        }
        return out + "</section>"
    }

    static let style = """
        body{font:14px system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
        header{display:flex;align-items:center;gap:1em;padding:.5em 1em;background:#263238;color:#fff}
        h1{font-size:18px;margin:0}h2{font-size:15px;margin:.2em 0 .5em}
        #connection{padding:2px 8px;border-radius:8px;font-size:12px}
        .live{background:#2e7d32}.lost{background:#c62828}
        main{padding:.5em 1em}.status p{margin:.3em 0}.runs{margin:.2em 0;padding-left:1.2em}
        .swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
        .warning{background:#fff3cd;border:1px solid #e0a800;padding:.4em .6em}
        .plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:8px}
        svg.plot{background:#fff;border:1px solid #ddd;width:100%;height:auto}
        svg .title{font-size:12px;font-weight:600}svg .frame{fill:none;stroke:#bbb}
        svg .grid{stroke:#eee}svg .ytick{font-size:10px;text-anchor:end;dominant-baseline:middle}
        svg .xtick{font-size:10px;text-anchor:middle}svg .empty{font-size:12px;fill:#888;text-anchor:middle}
        svg .reference{stroke:#555;stroke-dasharray:5 4}svg .reference-label{font-size:10px;text-anchor:end;fill:#555}
        .facts{display:flex;flex-wrap:wrap;gap:12px;margin-top:10px;align-items:flex-start}
        .panel{background:#fff;border:1px solid #ddd;padding:.5em .8em}
        table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
        .differs td{background:#ffebee}.rank{background:#e3f2fd}.replica{margin-bottom:6px}
        .note{color:#666}.settings{max-height:420px;overflow:auto}
        """

    static let script = """
        const connection = document.getElementById('connection');
        async function refresh() {
          try {
            const response = await fetch('panels', {cache: 'no-store'});
            if (!response.ok) throw new Error(response.status);
            document.getElementById('panels').innerHTML = await response.text();
            connection.textContent = 'live'; connection.className = 'live';
          } catch (error) {
            connection.textContent = 'server gone: showing the last data, retrying'; connection.className = 'lost';
          }
        }
        setInterval(refresh, 2000);
        """
}
