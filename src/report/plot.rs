//! report::plot: the report's figures, drawn with plotters — each once as SVG (for the page, sharp at any size) and
//! once as an RGB bitmap encoded to PNG with `image` (for papers and slides). Text in bitmaps uses egui's own font
//! (Ubuntu Light), so nothing depends on the fonts a machine has.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One figure: its file stem, a caption for the page, and the two renderings.
pub struct Figure {
    pub name: String,
    pub caption: String,
    pub svg: String,
    pub png: Vec<u8>,
}

/// What draws a figure, on any plotters backend.
pub trait Plot {
    fn size(&self) -> (u32, u32) {
        (720, 420)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT).is_ok());
    if ok { Ok(()) } else { Err(anyhow!("the plot font could not be loaded")) }
}

/// Render `plot` as SVG and PNG.
pub fn render(name: &str, caption: &str, plot: &impl Plot) -> Result<Figure> {
    font()?;
    let (w, h) = plot.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        plot.draw(&root).map_err(|e| anyhow!("{name}.svg: {e}"))?;
        root.present().map_err(|e| anyhow!("{name}.svg: {e}"))?;
    }
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        plot.draw(&root).map_err(|e| anyhow!("{name}.png: {e}"))?;
        root.present().map_err(|e| anyhow!("{name}.png: {e}"))?;
    }
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| anyhow!("{name}.png: buffer size"))?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(Figure { name: name.into(), caption: caption.into(), svg, png: png.into_inner() })
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// (min, max) of the values, widened by 5 % (and to a unit span when flat).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

/// A labelled, coloured set of (x, y) points; an empty label stays out of the legend.
pub type Series = (String, [u8; 3], Vec<(f64, f64)>);

/// Curves over a shared x axis, with optional scattered points (e.g. each network's accuracy beside the mean).
pub struct Lines {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<Series>,
    pub points: Vec<Series>,
    pub log_y: bool,
}

impl Plot for Lines {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let all = || self.series.iter().chain(&self.points).flat_map(|s| s.2.iter());
        let (x0, x1) = range(all().map(|p| p.0));
        let mut chart = ChartBuilder::on(root);
        chart.caption(&self.title, ("sans-serif", 18)).margin(12).x_label_area_size(36).y_label_area_size(64);
        let legend = self.series.iter().chain(&self.points).any(|s| !s.0.is_empty());
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart.configure_mesh().x_desc(&self.x_desc).y_desc(&self.y_desc).label_style(("sans-serif", 12)).draw().map_err(err)?;
                for (label, c, pts) in &self.series {
                    let col = rgb(*c);
                    let s = chart.draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2))).map_err(err)?;
                    if !label.is_empty() {
                        s.label(label.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
                    }
                }
                for (label, c, pts) in &self.points {
                    let col = rgb(*c);
                    let s = chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled()))).map_err(err)?;
                    if !label.is_empty() {
                        s.label(label.as_str()).legend(move |(x, y)| Circle::new((x + 9, y), 3, col.filled()));
                    }
                }
                if legend {
                    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK.mix(0.4)).label_font(("sans-serif", 12))
                        .position(SeriesLabelPosition::UpperRight).draw().map_err(err)?;
                }
            }};
        }
        if self.log_y {
            let pos = all().map(|p| p.1).filter(|v| *v > 0.0 && v.is_finite());
            let (lo, hi) = pos.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
            let (lo, hi) = if lo.is_finite() { (lo / 1.3, hi * 1.3) } else { (1e-3, 1.0) };
            body!(chart.build_cartesian_2d(x0..x1, (lo..hi).log_scale()).map_err(err)?);
        } else {
            let (y0, y1) = range(all().map(|p| p.1));
            body!(chart.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?);
        }
        Ok(())
    }
}

/// Values per category: each category's points (e.g. one per seed) and a mean with an error bar (± sd, or an
/// interval), with an optional horizontal reference line (0 for differences).
pub struct Categories {
    pub title: String,
    pub y_desc: String,
    /// (label, points, centre, low, high)
    pub rows: Vec<(String, Vec<f64>, f64, f64, f64)>,
    pub reference: Option<f64>,
    pub colour: [u8; 3],
}

impl Plot for Categories {
    fn size(&self) -> (u32, u32) {
        ((160 + 130 * self.rows.len() as u32).max(420), 420)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let values = self.rows.iter().flat_map(|r| r.1.iter().copied().chain([r.2, r.3, r.4])).chain(self.reference);
        let (y0, y1) = range(values);
        let n = self.rows.len();
        let labels: Vec<String> = self.rows.iter().map(|r| r.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), y0..y1)
            .map_err(err)?;
        let fmt = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
        };
        chart.configure_mesh().disable_x_mesh().x_labels(n.max(1) * 2 + 1).x_label_formatter(&fmt).y_desc(&self.y_desc)
            .label_style(("sans-serif", 12)).draw().map_err(err)?;
        if let Some(r) = self.reference {
            chart.draw_series(LineSeries::new([(-0.5, r), (n as f64 - 0.5, r)], BLACK.mix(0.5).stroke_width(1))).map_err(err)?;
        }
        let col = rgb(self.colour);
        for (i, (_, pts, centre, low, high)) in self.rows.iter().enumerate() {
            let x = i as f64;
            chart.draw_series(pts.iter().enumerate().map(|(j, &v)| {
                // a small fixed spread so that equal values stay visible
                let dx = 0.12 * ((j as f64 * 0.618_034).fract() - 0.5);
                Circle::new((x - 0.15 + dx, v), 3, col.mix(0.6).filled())
            })).map_err(err)?;
            if low.is_finite() && high.is_finite() {
                chart.draw_series(LineSeries::new([(x + 0.1, *low), (x + 0.1, *high)], BLACK.stroke_width(2))).map_err(err)?;
                for y in [*low, *high] {
                    chart.draw_series(LineSeries::new([(x + 0.05, y), (x + 0.15, y)], BLACK.stroke_width(2))).map_err(err)?;
                }
            }
            chart.draw_series([Rectangle::new([(x + 0.06, *centre), (x + 0.14, *centre)], BLACK.stroke_width(3))]).map_err(err)?;
            chart.draw_series([Circle::new((x + 0.1, *centre), 4, BLACK.filled())]).map_err(err)?;
        }
        Ok(())
    }
}

/// The disk or the PCA of one snapshot: real points faint, synthetic points solid, per-class centroids and (on the
/// disk) the geodesic from each real centroid to its synthetic one — the app's picture (`view`), on paper.
pub struct Cloud {
    pub title: String,
    pub disk: bool,
    pub classes: usize,
    pub real: Vec<([f64; 2], usize)>,
    pub syn: Vec<([f64; 2], usize)>,
    pub real_centroids: Vec<[f64; 2]>,
    pub syn_centroids: Vec<[f64; 2]>,
    pub arcs: Vec<Vec<[f64; 2]>>,
    pub class_names: Vec<String>,
}

impl Plot for Cloud {
    fn size(&self) -> (u32, u32) {
        (620, 520)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let ext = if self.disk {
            1.02
        } else {
            1.05 * self.real.iter().chain(&self.syn).fold(1e-9f64, |m, (p, _)| m.max(p[0].abs()).max(p[1].abs()))
        };
        let (plot, legend) = root.split_horizontally(500);
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, ("sans-serif", 16))
            .margin(8)
            .build_cartesian_2d(-ext..ext, -ext..ext)
            .map_err(err)?;
        if self.disk {
            let circle: Vec<(f64, f64)> = (0..=180).map(|i| {
                let a = i as f64 / 180.0 * std::f64::consts::TAU;
                (a.cos(), a.sin())
            }).collect();
            chart.draw_series(LineSeries::new(circle, BLACK.stroke_width(1))).map_err(err)?;
        } else {
            chart.configure_mesh().disable_mesh().label_style(("sans-serif", 10)).draw().map_err(err)?;
        }
        let col = |c: usize| rgb(crate::view::class_rgb(c, self.classes));
        chart.draw_series(self.real.iter().map(|(p, c)| Circle::new((p[0], p[1]), 2, col(*c).mix(0.35).filled()))).map_err(err)?;
        for (c, arc) in self.arcs.iter().enumerate() {
            chart.draw_series(LineSeries::new(arc.iter().map(|p| (p[0], p[1])), col(c).stroke_width(2))).map_err(err)?;
        }
        chart.draw_series(self.syn.iter().map(|(p, c)| Circle::new((p[0], p[1]), 4, col(*c).filled()))).map_err(err)?;
        chart.draw_series(self.syn.iter().map(|(p, _)| Circle::new((p[0], p[1]), 4, BLACK.stroke_width(1)))).map_err(err)?;
        for (c, (a, b)) in self.real_centroids.iter().zip(&self.syn_centroids).enumerate() {
            chart.draw_series([Circle::new((a[0], a[1]), 7, col(c).stroke_width(2))]).map_err(err)?;
            chart.draw_series([TriangleMarker::new((b[0], b[1]), 7, col(c).filled())]).map_err(err)?;
        }
        // the legend: classes, then the marks
        let style = ("sans-serif", 12).into_font();
        for c in 0..self.classes.min(20) {
            let y = 30 + 18 * c as i32;
            legend.draw(&Circle::new((12, y), 5, col(c).filled())).map_err(err)?;
            let name = self.class_names.get(c).map_or(c.to_string(), |n| n.chars().take(12).collect());
            legend.draw(&Text::new(name, (22, y - 7), style.clone())).map_err(err)?;
        }
        let y = 30 + 18 * self.classes.min(20) as i32 + 14;
        let grey = RGBColor(90, 90, 90);
        let mut row = 0;
        let mut key = |mark: &dyn Fn(i32) -> Result<(), String>, text: &str| -> Result<(), String> {
            let yy = y + 18 * row;
            row += 1;
            mark(yy)?;
            legend.draw(&Text::new(text.to_string(), (24, yy - 7), style.clone())).map_err(err)
        };
        if self.disk {
            key(&|yy| legend.draw(&Circle::new((12, yy), 6, grey.stroke_width(2))).map_err(err), "real centroid")?;
            key(&|yy| legend.draw(&TriangleMarker::new((12, yy), 6, grey.filled())).map_err(err), "synthetic centroid")?;
        }
        key(&|yy| {
            legend.draw(&Circle::new((12, yy), 4, grey.filled())).map_err(err)?;
            legend.draw(&Circle::new((12, yy), 4, BLACK.stroke_width(1))).map_err(err)
        }, "synthetic image")?;
        key(&|yy| legend.draw(&Circle::new((12, yy), 2, grey.mix(0.5).filled())).map_err(err), "real image")?;
        Ok(())
    }
}

/// A confusion matrix, rows normalised (true class → fraction predicted as each class), with the percentages written.
pub struct Confusion {
    pub title: String,
    pub classes: Vec<String>,
    /// row-major counts [true, predicted]
    pub counts: Vec<u64>,
}

impl Plot for Confusion {
    fn size(&self) -> (u32, u32) {
        let n = self.classes.len() as u32;
        ((200 + 44 * n).min(1400), (140 + 40 * n).min(1300))
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let k = self.classes.len();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(110)
            // a discrete range is inclusive: 0..k − 1 is k cells
            .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
            .map_err(err)?;
        let short = |i: usize| self.classes.get(i).map_or(i.to_string(), |n| n.chars().take(14).collect());
        // labels at the cells' centres; rows drawn top to bottom: true class t at y = k − 1 − t
        let fmt_x = |v: &SegmentValue<usize>| if let SegmentValue::CenterOf(i) = v { short(*i) } else { String::new() };
        let fmt_y = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if *i < k => short(k - 1 - i),
            _ => String::new(),
        };
        chart.configure_mesh().disable_mesh().x_labels(k).y_labels(k).x_label_formatter(&fmt_x).y_label_formatter(&fmt_y)
            .x_desc("predicted").y_desc("true").label_style(("sans-serif", 11)).draw().map_err(err)?;
        for t in 0..k {
            let row: u64 = self.counts[t * k..(t + 1) * k].iter().sum();
            for p in 0..k {
                let f = if row > 0 { self.counts[t * k + p] as f64 / row as f64 } else { 0.0 };
                let shade = (255.0 * (1.0 - f)).round() as u8;
                let y = k - 1 - t;
                let cell = [(SegmentValue::Exact(p), SegmentValue::Exact(y)), (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1))];
                chart.draw_series([Rectangle::new(cell, RGBColor(shade, shade, 255).filled())]).map_err(err)?;
            }
        }
        // the percentages, in pixel coordinates of the plotting area
        let area = chart.plotting_area();
        let (px, py) = area.get_pixel_range();
        let (cw, ch) = ((px.end - px.start) as f64 / k as f64, (py.end - py.start) as f64 / k as f64);
        let font = ("sans-serif", 11).into_font();
        for t in 0..k {
            let row: u64 = self.counts[t * k..(t + 1) * k].iter().sum();
            for p in 0..k {
                let f = if row > 0 { self.counts[t * k + p] as f64 / row as f64 } else { 0.0 };
                if f < 0.005 {
                    continue;
                }
                let colour = if f > 0.55 { WHITE } else { BLACK };
                let (x, y) = (px.start as f64 + (p as f64 + 0.22) * cw, py.start as f64 + (t as f64 + 0.35) * ch);
                root.draw(&Text::new(format!("{:.0}", 100.0 * f), (x as i32, y as i32), font.clone().color(&colour))).map_err(err)?;
            }
        }
        Ok(())
    }
}

/// Bars per category (per-class or per-network accuracy), value written above each.
pub struct Bars {
    pub title: String,
    pub y_desc: String,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
    pub colour: [u8; 3],
}

impl Plot for Bars {
    fn size(&self) -> (u32, u32) {
        ((160 + 60 * self.labels.len() as u32).clamp(420, 1400), 380)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let n = self.labels.len();
        let top = self.values.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-9) * 1.12;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top)
            .map_err(err)?;
        let labels = &self.labels;
        let fmt = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 { labels.get(i as usize).map(|s| s.chars().take(12).collect()).unwrap_or_default() } else { String::new() }
        };
        chart.configure_mesh().disable_x_mesh().x_labels(n.max(1) * 2 + 1).x_label_formatter(&fmt).y_desc(&self.y_desc)
            .label_style(("sans-serif", 11)).draw().map_err(err)?;
        let col = rgb(self.colour);
        chart.draw_series(self.values.iter().enumerate().map(|(i, &v)| Rectangle::new([(i as f64 - 0.35, 0.0), (i as f64 + 0.35, v)], col.filled())))
            .map_err(err)?;
        chart.draw_series(self.values.iter().enumerate().map(|(i, &v)| Text::new(format!("{v:.1}"), (i as f64 - 0.25, v + 0.04 * top), ("sans-serif", 11))))
            .map_err(err)?;
        Ok(())
    }
}
