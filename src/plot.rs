//! Line charts as PNG and SVG (plotters), with an embedded font so they render the same on any
//! machine.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

/// A named series of (x, y) points.
pub struct Series {
    /// Legend label.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// What to draw.
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// Label of the x axis.
    pub x_label: &'a str,
    /// Label of the y axis.
    pub y_label: &'a str,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The lines.
    pub series: &'a [Series],
    /// Horizontal reference lines (label, y), drawn dashed-grey.
    pub references: &'a [(String, f64)],
}

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType file"));
    });
}

/// Writes `stem.png` and `stem.svg`.
pub fn write_chart(stem: &Path, chart: &Chart<'_>) -> Result<(), String> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw(
        BitMapBackend::new(&png, (900, 560)).into_drawing_area(),
        chart,
    )
    .map_err(|e| format!("cannot draw {}: {e}", png.display()))?;
    draw(SVGBackend::new(&svg, (900, 560)).into_drawing_area(), chart)
        .map_err(|e| format!("cannot draw {}: {e}", svg.display()))?;
    Ok(())
}

fn bounds(chart: &Chart<'_>) -> (f64, f64, f64, f64) {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let ys = points
        .clone()
        .map(|p| p.1)
        .chain(chart.references.iter().map(|r| r.1))
        .filter(|y| y.is_finite() && (!chart.log_y || *y > 0.0));
    let (mut y_min, mut y_max) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let (x_min, x_max) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    if !y_min.is_finite() {
        (y_min, y_max) = (1e-3, 1.0);
    }
    if y_max <= y_min {
        y_max = y_min * 2.0 + 1e-12;
    }
    let (x_min, x_max) = if x_min.is_finite() && x_max > x_min {
        (x_min, x_max)
    } else {
        (0.0, 1.0)
    };
    (x_min, x_max, y_min, y_max)
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    chart: &Chart<'_>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (x_min, x_max, y_min, y_max) = bounds(chart);
    let mut builder = ChartBuilder::on(&area);
    builder
        .caption(chart.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72);
    macro_rules! finish {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            let y_format = |y: &f64| {
                if chart.log_y {
                    format!("{y:.0e}")
                } else {
                    format!("{y:.3}")
                }
            };
            ctx.configure_mesh()
                .y_label_formatter(&y_format)
                .x_label_formatter(&|x: &f64| format!("{x}"))
                .x_desc(chart.x_label)
                .y_desc(chart.y_label)
                .label_style(("sans-serif", 14))
                .draw()?;
            for (label, y) in chart.references {
                let y = *y;
                ctx.draw_series(LineSeries::new(
                    [(x_min, y), (x_max, y)],
                    ShapeStyle::from(&RGBColor(150, 150, 150)).stroke_width(1),
                ))?
                .label(label.as_str())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RGBColor(150, 150, 150)));
            }
            for (i, series) in chart.series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let points = series
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.1.is_finite() && (!chart.log_y || p.1 > 0.0));
                ctx.draw_series(LineSeries::new(
                    points,
                    ShapeStyle::from(&color).stroke_width(2),
                ))?
                .label(series.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(
                        [(x, y), (x + 18, y)],
                        ShapeStyle::from(&color).stroke_width(2),
                    )
                });
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }};
    }
    if chart.log_y {
        finish!(builder.build_cartesian_2d(x_min..x_max, (y_min * 0.8..y_max * 1.25).log_scale())?);
    } else {
        let pad = (y_max - y_min) * 0.05;
        finish!(builder.build_cartesian_2d(x_min..x_max, (y_min - pad)..(y_max + pad))?);
    }
    area.present()?;
    Ok(())
}
