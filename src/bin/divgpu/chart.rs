//! `divgpu bench --chart`: plotters draws the rows as SVG. Here in the binary, not the library,
//! so that the library and the Python extension build without plotters.

use std::path::Path;

use crate::bench::{BenchReport, Row};
use divgpu::Error;

/// The speed-ups of `report` as a bar chart (log scale), written as SVG.
pub fn write(report: &BenchReport, path: &Path) -> Result<(), Error> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let fail = |e: &dyn std::fmt::Display| Error::Data(format!("{}: {e}", path.display()));
    let top = report.rows.iter().map(|r| r.speedup).fold(1.0, f64::max) * 3.0;
    let floor = report.rows.iter().map(|r| r.speedup).fold(1.0, f64::min) / 3.0;
    let title = match &report.adapter {
        Some(a) => format!(
            "divgpu bench: speed-up over CPU naive, 1 thread (GPU: {})",
            a.name
        ),
        None => "divgpu bench: speed-up over CPU naive, 1 thread".to_string(),
    };
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let n = report.rows.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            (floor..top).log_scale(),
        )
        .map_err(|e| fail(&e))?;
    let labels: Vec<String> = report.rows.iter().map(Row::label).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("speed-up (log scale)")
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(report.rows.iter().enumerate().map(|(i, r)| {
            let color = if r.backend == "gpu" { RED } else { BLUE };
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), floor),
                    (SegmentValue::Exact(i + 1), r.speedup),
                ],
                color.mix(0.7).filled(),
            );
            bar.set_margin(0, 0, 12, 12);
            bar
        }))
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(report.rows.iter().enumerate().map(|(i, r)| {
            let style = ("sans-serif", 14)
                .into_text_style(&root)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            Text::new(
                format!("{:.1}x", r.speedup),
                (SegmentValue::CenterOf(i), r.speedup * 1.05),
                style,
            )
        }))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}
