//! app::disk: the Poincaré disk (exact geodesic radius from the chosen centre, directions by PCA) with the class
//! centroids and their geodesics, and the Euclidean PCA of the raw features beside it, for contrast.

use std::sync::Arc;

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};

use super::session::SessionInfo;
use super::{Centre, Hover, HyperApp};
use crate::hdd::LorentzMap;
use crate::view;

impl HyperApp {
    /// The disk's header (its centre), the disk and the PCA side by side, and the clamp's note.
    pub(super) fn disks(&mut self, ui: &mut egui::Ui, info: &SessionInfo) {
        let ds = &info.dataset;
        let classes = ds.classes.len();
        let Some(snap) = self.latest.as_ref() else { return };
        let view = snap.view.clone();
        let iteration = snap.iteration;
        let other = snap.other.as_ref().map(|o| (o.view.clone(), o.iteration));
        // one row (wrapping on narrow windows), so that the disk below keeps its height
        ui.horizontal_wrapped(|ui| {
            ui.strong("Poincaré disk");
            ui.label("centre:");
            ui.radio_value(&mut self.centre, Centre::Origin, "origin");
            ui.radio_value(&mut self.centre, Centre::RealCentroid, "real centroid").on_hover_text("click a point to centre on its class");
            if let Centre::Class(c) = self.centre {
                ui.label(format!("class {c} ({})", ds.classes.get(c).map_or("", |s| s.as_str())));
            }
            ui.separator();
            ui.label("radius:");
            ui.radio_value(&mut self.radial, view::RadialScale::Exact, "exact")
                .on_hover_text("ρ = tanh(d / 2√k): the true Poincaré disk; with the authors' settings nearly every point is on the rim");
            ui.radio_value(&mut self.radial, view::RadialScale::Auto, "auto")
                .on_hover_text("ρ = tanh(d / 2s√k): distances from the centre divided by s, chosen so the median real point lies at ρ = ½ \
                                (order and angles kept; the same points at curvature −1/(k s²))");
            let manual = matches!(self.radial, view::RadialScale::Factor(_));
            if ui.radio(manual, "÷ s").on_hover_text("distances from the centre divided by the factor on the slider").clicked() {
                self.radial = view::RadialScale::Factor(self.radial_factor);
            }
            let slider = ui.add(egui::Slider::new(&mut self.radial_factor, 1.0..=100.0).logarithmic(true).max_decimals(1).text("s"));
            if slider.changed() {
                self.radial = view::RadialScale::Factor(self.radial_factor);
            }
        });
        // as wide as half the panel, and short enough that the whole disk is in view below the grids without scrolling:
        // the panel's visible height less the grids' (last frame) and the rows between them (sizes, not positions, so
        // the disk does not change size while the panel scrolls)
        let by_width = (ui.available_width() - 20.0) / 2.0;
        let above = self.last_grid_rect.map_or(0.0, |r| r.height()) + 120.0;
        let by_height = ui.clip_rect().height() - above;
        let side = by_width.min(by_height).clamp(200.0, 520.0);
        ui.horizontal_top(|ui| match &other {
            // compare mode: the two methods' disks side by side; the real points are the same (one view network, one
            // set of real images), so the two pictures share centre and directions and only the synthetic points differ
            Some((other_view, other_it)) => {
                let method = info.settings.distill.method;
                ui.vertical(|ui| {
                    ui.strong(method.name());
                    self.disk_panel(ui, &view, iteration, side, classes, 0);
                });
                ui.vertical(|ui| {
                    ui.strong(method.twin().name());
                    self.disk_panel(ui, other_view, *other_it, side, classes, 1);
                });
            }
            None => {
                self.disk_panel(ui, &view, iteration, side, classes, 0);
                match self.centre {
                    // one class: how far its real and synthetic points lie from its real centroid
                    Centre::Class(c) => self.distance_histogram(ui, &view, c.min(classes - 1), side, classes, &ds.classes),
                    _ => self.euclid_panel(ui, &view, iteration, side, classes),
                }
            }
        });
        if view.clamp_binds_all() {
            ui.colored_label(
                Color32::from_rgb(200, 140, 20),
                format!(
                    "Radius clamp active: every feature here has ‖v‖/√k above {}, so expmap0 puts every point at exactly that \
                     distance from the origin (centre the disk on the origin to see them on one circle). Only their directions \
                     differ; the class centroids sit inside the sphere, and HDD moves the synthetic centroid by turning directions.",
                    view.hdd.clamp.unwrap_or(0.0)
                ),
            );
        }
    }


    /// One disk; `slot` 1 is compare mode's second (its own cached picture).
    pub(super) fn disk_panel(&mut self, ui: &mut egui::Ui, view: &Arc<view::ViewFeatures>, iteration: usize, side: f32, classes: usize, slot: usize) {
        let key = (iteration, self.centre, self.radial);
        if self.disk[slot].as_ref().is_none_or(|(k, _)| *k != key) {
            let centre = match self.centre {
                Centre::Origin => {
                    let mut o = vec![0.0; view.real_centre.len()];
                    o[0] = view.hdd.k.sqrt();
                    o
                }
                Centre::RealCentroid => view.real_centre.clone(),
                Centre::Class(c) => view.real_centroids[c.min(classes - 1)].clone(),
            };
            let pic = view::disk_picture(&view.real_pts, &view.syn_pts, &view.real_centroids, &view.syn_centroids, &centre, view.hdd.k, self.disk_basis[slot].as_ref(), self.radial);
            self.disk_basis[slot] = pic.basis.clone();
            self.disk[slot] = Some((key, pic));
        }
        let Some((_, pic)) = &self.disk[slot] else { return };
        let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::click());
        let rect = resp.rect;
        if slot == 0 {
            self.last_disk_rect = Some(rect);
            self.disks_drawn = 0;
        }
        self.disks_drawn += 1;
        let r = side * 0.48;
        let c0 = rect.center();
        let to_screen = |p: &[f64; 2]| Pos2::new(c0.x + r * p[0] as f32, c0.y - r * p[1] as f32);
        painter.rect_filled(rect, 4.0, Color32::from_gray(250));
        painter.circle_filled(c0, r, Color32::WHITE);
        painter.circle_stroke(c0, r, Stroke::new(1.5, Color32::from_gray(60)));
        if let (Centre::Origin, Some(cl), LorentzMap::Expmap) = (self.centre, view.hdd.clamp, view.hdd.map) {
            let rho = view::disk_radius(cl, view.hdd.k, pic.scale) as f32;
            let pts: Vec<Pos2> = (0..=96).map(|i| {
                let a = i as f32 / 96.0 * std::f32::consts::TAU;
                Pos2::new(c0.x + r * rho * a.cos(), c0.y + r * rho * a.sin())
            }).collect();
            painter.extend(egui::Shape::dashed_line(&pts, Stroke::new(1.0, Color32::from_rgb(200, 140, 20)), 4.0, 3.0));
        }
        // centred on a class: only that class's points, centroids and arc
        let only = match self.centre {
            Centre::Class(c) => Some(c),
            _ => None,
        };
        let picked = self.picked.clone();
        let shown = |l: usize| only.is_none_or(|c| c == l) && picked.contains(&l);
        for (p, &l) in pic.real.iter().zip(&view.real_labels).filter(|(_, l)| shown(**l)) {
            painter.circle_filled(to_screen(p), if only.is_some() { 3.5 } else { 2.5 }, class_colour(l, classes).gamma_multiply(0.35));
        }
        for (arc, c) in pic.arcs.iter().zip(0..).filter(|(_, c)| shown(*c)) {
            let pts: Vec<Pos2> = arc.iter().map(to_screen).collect();
            painter.line(pts, Stroke::new(1.5, class_colour(c, classes)));
        }
        if slot == 0 {
            self.last_syn_point = pic.syn.iter().zip(&view.syn_labels).find(|(_, l)| shown(**l)).map(|(p, _)| to_screen(p));
        }
        for (p, &l) in pic.syn.iter().zip(&view.syn_labels).filter(|(_, l)| shown(**l)) {
            let q = to_screen(p);
            painter.circle_filled(q, 4.5, class_colour(l, classes));
            painter.circle_stroke(q, 4.5, Stroke::new(1.0, Color32::BLACK));
        }
        for (c, (a, b)) in pic.real_centroids.iter().zip(&pic.syn_centroids).enumerate().filter(|(c, _)| shown(*c)) {
            let col = class_colour(c, classes);
            painter.circle_stroke(to_screen(a), 6.0, Stroke::new(2.0, col));
            let q = to_screen(b);
            painter.rect_filled(Rect::from_center_size(q, Vec2::splat(9.0)), 0.0, col);
            painter.rect_stroke(Rect::from_center_size(q, Vec2::splat(9.0)), 0.0, Stroke::new(1.0, Color32::BLACK), egui::StrokeKind::Outside);
        }
        if let Some(Hover::Syn(i)) = self.hover
            && let Some(p) = pic.syn.get(i)
            && view.syn_labels.get(i).is_some_and(|&l| shown(l))
        {
            let q = to_screen(p);
            painter.circle_stroke(q, 9.0, Stroke::new(2.5, Color32::BLACK));
            // the image itself beside its point, cut from the synthetic grid's texture (row = class, column = index)
            if let (Some((_, tex)), Some(uv)) = (&self.textures.syn, self.grid_uv(i)) {
                let size = 64.0;
                let at = Pos2::new(if q.x + 14.0 + size < rect.right() { q.x + 14.0 } else { q.x - 14.0 - size }, (q.y - size / 2.0).clamp(rect.top(), rect.bottom() - size));
                let r = Rect::from_min_size(at, Vec2::splat(size));
                painter.rect_filled(r.expand(2.0), 2.0, Color32::BLACK);
                painter.image(tex.id(), r, uv, Color32::WHITE);
            }
        }
        if let Some(Hover::Real(i)) = self.hover
            && let Some(p) = pic.real.get(i)
        {
            painter.circle_stroke(to_screen(p), 7.0, Stroke::new(2.0, Color32::BLACK));
        }
        painter.text(rect.left_top() + Vec2::new(6.0, 4.0), egui::Align2::LEFT_TOP,
            format!(
                "○ real centroid  ■ synthetic centroid\n● synthetic  · real\nradius ρ = tanh(d / 2s√k), {}\nd = geodesic distance to the centre\ndirection = PCA",
                if pic.scale == 1.0 { "s = 1 (exact)".to_string() } else { format!("s = {:.2}", pic.scale) }
            ),
            egui::FontId::proportional(11.0), Color32::from_gray(80));
        // hover and click: the nearest point within 8 px
        if let Some(pos) = resp.hover_pos() {
            let near = |pts: &[[f64; 2]]| {
                pts.iter().enumerate().map(|(i, p)| (i, to_screen(p).distance(pos))).min_by(|a, b| a.1.total_cmp(&b.1))
            };
            let (s, rl) = (near(&pic.syn), near(&pic.real));
            let pick = match (s, rl) {
                (Some((i, ds)), Some((j, dr))) => if ds <= dr + 2.0 { Some((Hover::Syn(i), ds)) } else { Some((Hover::Real(j), dr)) },
                (Some((i, ds)), None) => Some((Hover::Syn(i), ds)),
                _ => None,
            };
            if let Some((h, _)) = pick.filter(|(_, d)| *d < 8.0) {
                self.next_hover = Some(h);
                if resp.clicked() {
                    let label = match h {
                        Hover::Syn(i) => view.syn_labels[i],
                        Hover::Real(j) => view.real_labels[j],
                    };
                    // a second click on the class shown goes back to all classes
                    self.centre = if only == Some(label) { Centre::RealCentroid } else { Centre::Class(label) };
                }
            }
        }
    }

    /// Centred on class `c`: histograms of the geodesic distances from its real centroid to its real points and to its
    /// synthetic images — DM's and HDD's prototypes sit nearer the centroid than most real images ("gravitate to the root").
    fn distance_histogram(&mut self, ui: &mut egui::Ui, view: &Arc<view::ViewFeatures>, c: usize, side: f32, classes: usize, names: &[String]) {
        use egui_plot::{Bar, BarChart, Legend, Plot};
        let Some((_, pic)) = &self.disk[0] else { return };
        let of = |d: &[f64], labels: &[usize]| d.iter().zip(labels).filter(|(_, l)| **l == c).map(|(d, _)| *d).collect::<Vec<f64>>();
        let (real, syn) = (of(&pic.real_dist, &view.real_labels), of(&pic.syn_dist, &view.syn_labels));
        // bins over the range the points span (with the authors' settings every distance lies far from 0)
        let lo = real.iter().chain(&syn).copied().fold(f64::INFINITY, f64::min);
        let hi = real.iter().chain(&syn).copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (0.0, lo.max(0.0) + 1.0) };
        let bins = 20;
        let w = (hi - lo) / bins as f64;
        let hist = |d: &[f64], shift: f64| {
            let mut n = vec![0usize; bins];
            for &x in d {
                n[(((x - lo) / w) as usize).min(bins - 1)] += 1;
            }
            n.iter()
                .enumerate()
                .filter(|(_, k)| **k > 0)
                .map(|(b, &k)| Bar::new(lo + (b as f64 + 0.5 + shift) * w, k as f64 / d.len().max(1) as f64).width(w * 0.45))
                .collect::<Vec<_>>()
        };
        let median = |d: &[f64]| {
            let mut v = d.to_vec();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        ui.vertical(|ui| {
            ui.set_width(side);
            ui.label(format!(
                "class {c} ({}): geodesic distance to its real centroid — real median {:.3} ({} shown), synthetic median {:.3} ({} images)",
                names.get(c).map_or("", |s| s.as_str()), median(&real), real.len(), median(&syn), syn.len()
            ));
            let col = class_colour(c, classes);
            Plot::new("class-distances").width(side).height(side - 40.0).legend(Legend::default()).x_axis_label("distance d").y_axis_label("fraction").show(ui, |p| {
                // side by side in each bin: real (grey) left, synthetic (the class's colour) right
                p.bar_chart(BarChart::new("real", hist(&real, -0.225)).color(Color32::from_gray(170)));
                p.bar_chart(BarChart::new("synthetic", hist(&syn, 0.225)).color(col));
            });
        });
    }

    pub(super) fn euclid_panel(&mut self, ui: &mut egui::Ui, view: &Arc<view::ViewFeatures>, iteration: usize, side: f32, classes: usize) {
        if self.euclid.as_ref().is_none_or(|(k, _)| *k != iteration) {
            let (r, s, b) = view::euclidean_picture(&view.real_feat, &view.syn_feat, self.euclid_basis.as_ref());
            self.euclid_basis = Some(b);
            self.euclid = Some((iteration, (r, s)));
        }
        let Some((_, (real, syn))) = &self.euclid else { return };
        let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::hover());
        let rect = resp.rect;
        painter.rect_filled(rect, 4.0, Color32::from_gray(250));
        let ext = real.iter().chain(syn.iter()).fold(1e-9f64, |m, p| m.max(p[0].abs()).max(p[1].abs()));
        let r = side * 0.45;
        let c0 = rect.center();
        let to_screen = |p: &[f64; 2]| Pos2::new(c0.x + r * (p[0] / ext) as f32, c0.y - r * (p[1] / ext) as f32);
        for (p, &l) in real.iter().zip(&view.real_labels).filter(|(_, l)| self.picked.contains(l)) {
            painter.circle_filled(to_screen(p), 2.5, class_colour(l, classes).gamma_multiply(0.35));
        }
        for (i, (p, &l)) in syn.iter().zip(&view.syn_labels).enumerate().filter(|(_, (_, l))| self.picked.contains(l)) {
            let q = to_screen(p);
            painter.circle_filled(q, 4.5, class_colour(l, classes));
            painter.circle_stroke(q, 4.5, Stroke::new(1.0, Color32::BLACK));
            if self.hover == Some(Hover::Syn(i)) {
                painter.circle_stroke(q, 9.0, Stroke::new(2.5, Color32::BLACK));
            }
        }
        painter.text(rect.left_top() + Vec2::new(6.0, 4.0), egui::Align2::LEFT_TOP,
            "Euclidean contrast: PCA of the raw features v (what DM matches)",
            egui::FontId::proportional(11.0), Color32::from_gray(80));
    }

}

/// A distinct colour per class (`view::class_rgb`, shared with the report's figures).
pub fn class_colour(c: usize, classes: usize) -> Color32 {
    let [r, g, b] = view::class_rgb(c, classes);
    Color32::from_rgb(r, g, b)
}
