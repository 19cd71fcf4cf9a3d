//! The devnet's loss-versus-wall-clock chart: one self-contained SVG file.
//!
//! This module owns drawing the chart from `(seconds, loss)` points; it does not read the chain
//! or the agents (the caller passes the rounds' points).

use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 48.0;

/// An SVG line chart of `points` (wall-clock seconds since the first proposal, eval loss), with
/// labelled axes and one marker per point. Needs at least one point.
pub fn loss_svg(points: &[(f64, f64)]) -> String {
    let (max_x, min_y, max_y) = points.iter().fold(
        (0.0f64, f64::INFINITY, f64::NEG_INFINITY),
        |(mx, lo, hi), &(x, y)| (mx.max(x), lo.min(y), hi.max(y)),
    );
    let max_x = if max_x > 0.0 { max_x } else { 1.0 };
    let (lo, hi) = if hi_gt_lo(min_y, max_y) {
        (min_y, max_y)
    } else {
        (min_y - 0.5, min_y + 0.5)
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / max_x * plot_w;
    let py = |y: f64| TOP + (hi - y) / (hi - lo) * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<title>Global eval loss against wall-clock time</title><rect width="100%" height="100%" fill="white"/>"#
    );
    // Axes.
    let _ = writeln!(
        svg,
        r#"<path d="M{LEFT} {TOP} V{} H{}" fill="none" stroke="black"/>"#,
        TOP + plot_h,
        LEFT + plot_w
    );
    for i in 0..=4 {
        let y = lo + (hi - lo) * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{y:.3}</text>"#,
            LEFT - 6.0,
            py(y) + 4.0
        );
        let x = max_x * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{x:.0}</text>"#,
            px(x),
            TOP + plot_h + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">wall-clock seconds since the first proposal</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">eval loss</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // The line and its points.
    let path: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f6feb" stroke-width="2"/>"##,
        path.join(" ")
    );
    for &(x, y) in points {
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f6feb"><title>{x:.0} s: {y:.4}</title></circle>"##,
            px(x),
            py(y)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn hi_gt_lo(lo: f64, hi: f64) -> bool {
    lo.is_finite() && hi.is_finite() && hi > lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circles(svg: &str) -> Vec<(f64, f64)> {
        svg.lines()
            .filter(|l| l.starts_with("<circle"))
            .map(|l| {
                let attr = |name: &str| -> f64 {
                    let start = l.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    l[start..].split('"').next().unwrap().parse().unwrap()
                };
                (attr("cx"), attr("cy"))
            })
            .collect()
    }

    #[test]
    fn points_are_placed_by_time_and_loss() {
        let svg = loss_svg(&[(0.0, 5.0), (30.0, 4.0), (60.0, 3.0)]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let c = circles(&svg);
        assert_eq!(c.len(), 3);
        // Later points lie further right; a lower loss lies lower on the page (a larger y).
        assert!(c[0].0 < c[1].0 && c[1].0 < c[2].0);
        assert!(c[0].1 < c[1].1 && c[1].1 < c[2].1);
        // The first point sits on the left axis at the top, the last at the right end, bottom.
        assert_eq!(c[0], (LEFT, TOP));
        assert_eq!(c[2], (WIDTH - RIGHT, HEIGHT - BOTTOM));
        assert!(svg.contains("<title>30 s: 4.0000</title>"));
    }

    #[test]
    fn one_point_or_a_flat_line_still_draws() {
        let svg = loss_svg(&[(0.0, 2.5)]);
        assert_eq!(circles(&svg).len(), 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let svg = loss_svg(&[(0.0, 2.5), (10.0, 2.5)]);
        let c = circles(&svg);
        assert_eq!(c[0].1, c[1].1);
        assert!(!svg.contains("NaN"));
    }
}
