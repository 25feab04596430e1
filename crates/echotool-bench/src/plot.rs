//! Latency percentile curves as SVG: one chart per scenario, one curve per protocol, the
//! percentile axis in "nines" (90, 99, 99.9, ...) so the tail gets the room it deserves.

use std::path::Path;

use plotters::prelude::*;

use crate::{BenchError, Report};

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
];

/// Writes the report's latency curves to `path` as SVG.
pub fn plot(report: &Report, path: &Path) -> Result<(), BenchError> {
    let err = |e: String| BenchError::Plot {
        path: path.display().to_string(),
        reason: e,
    };
    // One panel per kind of measurement (latency, throughput, setup, first-echo) and size; set-up
    // variants (a full and a resumed handshake, say) are curves in the same panel.
    let base = |scenario: &str| scenario.split('/').next().unwrap_or(scenario).to_string();
    let label = |row: &crate::Row| match row.scenario.split_once('/') {
        Some((_, variant)) => format!("{} {variant}", row.protocol),
        None => row.protocol.clone(),
    };
    let measured: Vec<&crate::Row> = report
        .rows
        .iter()
        .filter(|r| !r.median.curve.is_empty())
        .collect();
    let mut panels: Vec<(String, usize)> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for row in &measured {
        let key = (base(&row.scenario), row.size);
        if !panels.contains(&key) {
            panels.push(key);
        }
        let name = label(row);
        if !labels.contains(&name) {
            labels.push(name);
        }
    }
    // One colour per curve label, the same in every panel.
    let color_of = |name: &str| {
        let i = labels.iter().position(|l| l == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let root = SVGBackend::new(path, (900, 420 * panels.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    for ((scenario, size), area) in panels.iter().zip(areas.iter()) {
        let rows: Vec<&&crate::Row> = measured
            .iter()
            .filter(|r| base(&r.scenario) == *scenario && r.size == *size)
            .collect();
        let (lo, hi) = rows
            .iter()
            .flat_map(|r| r.median.curve.iter().map(|(_, us)| *us))
            .fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = ((lo * 0.8).max(0.1), (hi * 1.25).max(lo * 2.0).max(1.0));
        let what = match scenario.as_str() {
            "setup" => "time to a usable connection",
            "first-echo" => "time to the first echo",
            _ => "round trip",
        };
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!(
                    "{scenario}, {}: {what} by percentile",
                    crate::report::bytes(*size)
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..5.2f64, (lo..hi).log_scale())
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("microseconds (log)")
            .x_labels(7)
            .x_label_formatter(&|nines| nines_label(*nines))
            .y_labels(6)
            .y_label_formatter(&|us| format!("{us:.0}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for row in &rows {
            let name = label(row);
            let color = color_of(&name);
            let points = row
                .median
                .curve
                .iter()
                .filter(|(p, _)| *p < 100.0)
                .map(|(p, us)| {
                    let nines = -(1.0 - p / 100.0).max(1e-7).log10();
                    (nines, us.max(lo))
                });
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// 0 → "0", 1 → "90", 2 → "99", 3 → "99.9", ...
fn nines_label(nines: f64) -> String {
    if nines < 0.5 {
        return "0".into();
    }
    let p = 100.0 * (1.0 - 10f64.powf(-nines));
    let decimals = (nines.round() as i32 - 2).max(0) as usize;
    format!("{p:.decimals$}")
}
