//! Latency percentile curves as SVG: one chart per scenario, one curve per protocol, the
//! percentile axis in "nines" (90, 99, 99.9, ...) so the tail gets the room it deserves.

use std::path::Path;

use plotters::prelude::*;

use crate::report::bytes;
use crate::{BenchError, Report, Row};

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
    let layout = Layout::of(report);
    let panels = layout.panels.len().max(1);
    let root = SVGBackend::new(path, (900, 420 * panels as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let areas = root.split_evenly((panels, 1));
    for (panel, area) in layout.panels.iter().zip(areas.iter()) {
        layout.draw(panel, area).map_err(err)?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// One panel per kind of measurement (latency, throughput, setup, first-echo) and size; set-up
/// variants (a full and a resumed handshake, say) are curves in the same panel, and every curve
/// label has one colour in every panel.
struct Layout<'a> {
    measured: Vec<&'a Row>,
    panels: Vec<(String, usize)>,
    labels: Vec<String>,
}

/// `setup/full` → `setup`.
fn base(scenario: &str) -> &str {
    scenario.split('/').next().unwrap_or(scenario)
}

/// A row's curve label: the protocol, its set-up variant, and the link it crossed.
fn label(row: &Row) -> String {
    let name = match row.scenario.split_once('/') {
        Some((_, variant)) => format!("{} {variant}", row.protocol),
        None => row.protocol.clone(),
    };
    match &row.link {
        Some(link) => format!("{name} @ {link}"),
        None => name,
    }
}

impl<'a> Layout<'a> {
    fn of(report: &'a Report) -> Self {
        let measured: Vec<&Row> = report
            .rows
            .iter()
            .filter(|r| !r.median.curve.is_empty())
            .collect();
        let (mut panels, mut labels) = (Vec::new(), Vec::new());
        for row in &measured {
            let key = (base(&row.scenario).to_string(), row.size);
            if !panels.contains(&key) {
                panels.push(key);
            }
            let name = label(row);
            if !labels.contains(&name) {
                labels.push(name);
            }
        }
        Layout {
            measured,
            panels,
            labels,
        }
    }

    fn color_of(&self, name: &str) -> RGBColor {
        let i = self.labels.iter().position(|l| l == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }

    /// Draws one panel's curves into `area`.
    fn draw<DB: DrawingBackend>(
        &self,
        (scenario, size): &(String, usize),
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let rows: Vec<&Row> = self
            .measured
            .iter()
            .filter(|r| base(&r.scenario) == scenario && r.size == *size)
            .copied()
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
        let caption = format!("{scenario}, {}: {what} by percentile", bytes(*size));
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..5.2f64, (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("microseconds (log)")
            .x_labels(7)
            .x_label_formatter(&|nines| nines_label(*nines))
            .y_labels(6)
            .y_label_formatter(&|us| format!("{us:.0}"))
            .draw()
            .map_err(err)?;
        for row in rows {
            let name = label(row);
            let color = self.color_of(&name);
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
                .map_err(err)?
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
            .map_err(err)
    }
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
