//! A small HTML writer for the report page: escaped text, tables, figures
//! and code, with the style sheet inline, so `index.html` needs nothing but
//! the PNG files beside it (no scripts, no network).

use std::fmt::Write as _;

use super::MARKER;

/// The style sheet, inline in every page.
const CSS: &str = "\
body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;margin:0;color:#1e1e1e;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}
h2{font-size:21px;margin:36px 0 10px;padding-top:10px;border-top:2px solid #e4e4e4}
h3{font-size:16px;margin:20px 0 8px}
p,li{line-height:1.45}
code,pre{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:13px}
code{background:#f1f1f1;padding:1px 4px;border-radius:3px}
pre code{background:none;padding:0}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:12px;white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.4}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border:1px solid #d6d6d6;padding:4px 9px;vertical-align:top}
th{background:#f0f3f7;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.flag td{background:#fff3e6}
.meta{color:#555;margin:0 0 12px}
.verdict{border-left:6px solid #316eaa;background:#eef4fb;padding:10px 16px;margin:12px 0}
.verdict.bad{border-color:#c0392b;background:#fdeeee}
.warn{border-left:6px solid #de6e14;background:#fff6ec;padding:8px 16px;margin:12px 0}
.warn li{margin:3px 0}
.note{color:#555;font-style:italic}
figure{margin:14px 0 6px}
figure img{max-width:100%;height:auto;border:1px solid #e4e4e4}
figcaption{color:#555;font-size:14px;margin-top:4px}
.swatch{display:inline-block;width:14px;height:14px;border:1px solid #888;vertical-align:middle;margin-right:6px}
.thumbs td{text-align:center}
.thumbs img{image-rendering:pixelated;display:block;margin:0 auto}
nav a{margin-right:14px}
";

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a message and shows its `backticked` parts as code.
pub fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

/// A table cell.
pub enum Cell {
    /// Escaped text.
    Text(String),
    /// A number, right-aligned.
    Num(String),
    /// Markup, as it is.
    Html(String),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Self::Text(s.into())
    }
    pub fn num(s: impl ToString) -> Self {
        Self::Num(s.to_string())
    }
}

/// A table row; `flag` highlights it (rare classes).
pub struct Row {
    pub cells: Vec<Cell>,
    pub flag: bool,
}

impl Row {
    pub fn new(cells: Vec<Cell>) -> Self {
        Self { cells, flag: false }
    }
    pub fn flagged(cells: Vec<Cell>, flag: bool) -> Self {
        Self { cells, flag }
    }
}

/// The page being written.
pub struct Page {
    body: String,
    title: String,
}

impl Page {
    pub fn new(title: &str) -> Self {
        Self {
            body: String::new(),
            title: title.to_string(),
        }
    }

    /// Raw markup.
    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
        self.body.push('\n');
    }

    pub fn h1(&mut self, html: &str) {
        let _ = writeln!(self.body, "<h1>{html}</h1>");
    }

    pub fn h2(&mut self, id: &str, text: &str) {
        let _ = writeln!(self.body, "<h2 id=\"{}\">{}</h2>", esc(id), esc(text));
    }

    pub fn h3(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h3>{}</h3>", esc(text));
    }

    /// A paragraph of markup.
    pub fn p(&mut self, html: &str) {
        let _ = writeln!(self.body, "<p>{html}</p>");
    }

    /// A paragraph in the note style, from a message.
    pub fn note(&mut self, msg: &str) {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", inline(msg));
    }

    /// A box of warnings (nothing when empty).
    pub fn warnings(&mut self, title: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(
            self.body,
            "<div class=\"warn\"><strong>{}</strong><ul>",
            esc(title)
        );
        for w in items {
            let _ = writeln!(self.body, "<li>{}</li>", inline(w));
        }
        self.body.push_str("</ul></div>\n");
    }

    pub fn code(&mut self, code: &str) {
        let _ = writeln!(self.body, "<pre><code>{}</code></pre>", esc(code));
    }

    /// A plot, with its size so the page does not jump while loading.
    pub fn figure(&mut self, file: &str, w: u32, h: u32, alt: &str, caption: &str) {
        let _ = writeln!(
            self.body,
            "<figure><img src=\"{}\" width=\"{w}\" height=\"{h}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            esc(file),
            esc(alt),
            inline(caption)
        );
    }

    pub fn table(&mut self, head: &[&str], rows: &[Row]) {
        self.table_class("", head, rows);
    }

    pub fn table_class(&mut self, class: &str, head: &[&str], rows: &[Row]) {
        if class.is_empty() {
            self.body.push_str("<table>\n<tr>");
        } else {
            let _ = write!(self.body, "<table class=\"{}\">\n<tr>", esc(class));
        }
        for h in head {
            let _ = write!(self.body, "<th>{}</th>", esc(h));
        }
        self.body.push_str("</tr>\n");
        for r in rows {
            self.body.push_str(if r.flag {
                "<tr class=\"flag\">"
            } else {
                "<tr>"
            });
            for c in &r.cells {
                match c {
                    Cell::Text(t) => {
                        let _ = write!(self.body, "<td>{}</td>", inline(t));
                    }
                    Cell::Num(t) => {
                        let _ = write!(self.body, "<td class=\"n\">{}</td>", esc(t));
                    }
                    Cell::Html(h) => {
                        let _ = write!(self.body, "<td>{h}</td>");
                    }
                }
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// The whole document.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n{MARKER}\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n{}</main>\n</body>\n</html>\n",
            esc(&self.title),
            self.body
        )
    }
}

/// A colour swatch for `#rrggbb` codes, else nothing.
pub fn swatch(code: &str) -> String {
    let ok = code.len() == 7
        && code.starts_with('#')
        && code[1..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        format!("<span class=\"swatch\" style=\"background:{code}\"></span>")
    } else {
        String::new()
    }
}

/// A swatch for an RGB colour.
pub fn swatch_rgb(rgb: [u8; 3]) -> String {
    swatch(&format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]))
}
