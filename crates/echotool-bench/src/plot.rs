//! Latency percentile curves as SVG: one chart per scenario (and, over emulated links, one
//! column per link: small multiples), one curve per protocol in the same colour everywhere,
//! the percentile axis in "nines" (90, 99, 99.9, ...) so the tail gets the room it deserves.

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
    let columns = layout.links.len().max(1);
    let rows = layout.panels.len().div_ceil(columns).max(1);
    let width = if columns == 1 {
        900
    } else {
        560 * columns as u32
    };
    let root = SVGBackend::new(path, (width, 420 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let areas = root.split_evenly((rows, columns));
    for (panel, area) in layout.panels.iter().zip(areas.iter()) {
        layout.draw(panel, area).map_err(err)?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// One panel per kind of measurement (latency, throughput, setup, first-echo), size and link,
/// links in columns; set-up variants (a full and a resumed handshake, say) are curves in the
/// same panel, and every curve label has one colour in every panel.
struct Layout<'a> {
    measured: Vec<&'a Row>,
    panels: Vec<Panel>,
    labels: Vec<String>,
    links: Vec<Option<String>>,
}

/// What one panel shows: a scenario, a message size, a link.
#[derive(Clone, Debug, PartialEq)]
struct Panel {
    scenario: String,
    size: usize,
    link: Option<String>,
}

impl Panel {
    fn of(row: &Row) -> Self {
        Panel {
            scenario: base(&row.scenario).to_string(),
            size: row.size,
            link: row.link.clone(),
        }
    }
}

/// `setup/full` → `setup`.
fn base(scenario: &str) -> &str {
    scenario.split('/').next().unwrap_or(scenario)
}

/// A row's curve label: the protocol and its set-up variant (the link is the panel's).
fn label(row: &Row) -> String {
    match row.scenario.split_once('/') {
        Some((_, variant)) => format!("{} {variant}", row.protocol),
        None => row.protocol.clone(),
    }
}

impl<'a> Layout<'a> {
    fn of(report: &'a Report) -> Self {
        let measured: Vec<&Row> = report
            .rows
            .iter()
            .filter(|r| !r.median.curve.is_empty())
            .collect();
        let (mut keys, mut labels, mut links) = (Vec::new(), Vec::new(), Vec::new());
        for row in &measured {
            let key = (base(&row.scenario).to_string(), row.size);
            if !keys.contains(&key) {
                keys.push(key);
            }
            if !links.contains(&row.link) {
                links.push(row.link.clone());
            }
            let name = label(row);
            if !labels.contains(&name) {
                labels.push(name);
            }
        }
        // Row by row a scenario, column by column a link.
        let panels = keys
            .iter()
            .flat_map(|(scenario, size)| {
                links.iter().map(|link| Panel {
                    scenario: scenario.clone(),
                    size: *size,
                    link: link.clone(),
                })
            })
            .collect();
        Layout {
            measured,
            panels,
            labels,
            links,
        }
    }

    fn color_of(&self, name: &str) -> RGBColor {
        let i = self.labels.iter().position(|l| l == name).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }

    /// Draws one panel's curves into `area`.
    fn draw<DB: DrawingBackend>(
        &self,
        panel: &Panel,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let rows: Vec<&Row> = self
            .measured
            .iter()
            .filter(|r| Panel::of(r) == *panel)
            .copied()
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let (scenario, size) = (&panel.scenario, &panel.size);
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
        let over = panel
            .link
            .as_ref()
            .map(|l| format!(" over {l}"))
            .unwrap_or_default();
        let caption = format!("{scenario}, {}{over}: {what} by percentile", bytes(*size));
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
