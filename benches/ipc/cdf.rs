//! The W1 latency CDF plot (SVG).

use crate::harness::*;
use crate::w1::LatRow;

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn cdf_svg(rows: &[LatRow]) -> String {
    const W: f64 = 980.0;
    const H: f64 = 520.0;
    const L: f64 = 70.0;
    const R: f64 = 300.0;
    const T: f64 = 40.0;
    const B: f64 = 60.0;
    const COLORS: [&str; 8] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    const TOP_Q: f64 = 0.999;
    let rows: Vec<&LatRow> = rows.iter().filter(|r| !r.pooled.is_empty()).collect();
    let q = |v: &[u64], p: f64| v[((v.len() - 1) as f64 * p) as usize].max(1) as f64;
    let lo = rows
        .iter()
        .map(|r| q(&r.pooled, 0.0))
        .fold(f64::MAX, f64::min);
    let hi = rows.iter().map(|r| q(&r.pooled, TOP_Q)).fold(1.0, f64::max);
    let (e0, e1) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let pw = W - L - R;
    let ph = H - T - B;
    let x = |ns: f64| L + (ns.log10() - e0) / (e1 - e0) * pw;
    let y = |f: f64| T + (1.0 - f) * ph;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">W1: round-trip latency CDF, 64-byte array (up to p99.9)</text>"#,
        L + pw / 2.0
    );
    // Grid and axes.
    for i in 0..=10 {
        let f = i as f64 / 10.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{L}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{f:.1}</text>"##,
            y(f),
            L + pw,
            L - 6.0,
            y(f) + 4.0
        );
    }
    let mut e = e0;
    while e <= e1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(e);
            if v.log10() > e1 + 1e-9 {
                break;
            }
            let label = if v >= 1e6 {
                format!("{} ms", v / 1e6)
            } else if v >= 1e3 {
                format!("{} µs", v / 1e3)
            } else {
                format!("{v} ns")
            };
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="{T}" x2="{0:.1}" y2="{1:.1}" stroke="{2}"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle">{label}</text>"##,
                x(v),
                T + ph,
                if m == 1.0 { "#bbb" } else { "#eee" },
                T + ph + 18.0
            );
        }
        e += 1.0;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">round trip (log scale)</text>"#,
        L + pw / 2.0,
        H - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">fraction of round trips</text>"#,
        T + ph / 2.0,
        T + ph / 2.0
    );
    // Curves and legend.
    for (i, r) in rows.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dash = if r.variant.label().starts_with("baseline") {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        };
        let mut pts = String::new();
        for j in 0..=400 {
            let f = j as f64 / 400.0 * TOP_Q;
            let _ = write!(pts, "{:.1},{:.1} ", x(q(&r.pooled, f)), y(f));
        }
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            pts.trim_end()
        );
        let ly = T + 10.0 + i as f64 * 22.0;
        let lx = W - R + 20.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 28.0,
            lx + 34.0,
            ly + 4.0,
            xml_escape(r.variant.label())
        );
    }
    svg.push_str("</svg>\n");
    svg
}
