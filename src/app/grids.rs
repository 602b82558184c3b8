//! app::grids: the image grids — initial, synthetic (the shown snapshot) and real samples, one row per class — and
//! the timeline that scrubs through the kept snapshots.

use std::sync::Arc;

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};

use super::session::SessionInfo;
use super::{HyperApp, Hover};
use crate::export;

impl HyperApp {
    pub fn synthetic_grid_image(&self) -> Option<egui::ColorImage> {
        let (info, (_, px)) = (self.info.as_ref()?, self.shown()?);
        Some(grid_rgba(info, &px, info.settings.distill.ipc, &self.picked))
    }

    /// Where synthetic image `i` is in the synthetic grid's texture (row = class, column = index within the class).
    pub(super) fn grid_uv(&self, i: usize) -> Option<Rect> {
        let info = self.info.as_ref()?;
        let (ds, per) = (&info.dataset, info.settings.distill.ipc.max(1));
        let (h, w) = (ds.height as f32, ds.width as f32);
        let (gw, gh) = ((w + 1.0) * per as f32 + 1.0, (h + 1.0) * self.picked.len().max(1) as f32 + 1.0);
        let row = self.picked.iter().position(|&c| c == i / per)? as f32;
        let col = (i % per) as f32;
        let min = Pos2::new((1.0 + col * (w + 1.0)) / gw, (1.0 + row * (h + 1.0)) / gh);
        Some(Rect::from_min_size(min, Vec2::new(w / gw, h / gh)))
    }

    /// The synthetic pixels on display: the scrubbed snapshot, or the latest.
    pub(super) fn shown(&self) -> Option<(usize, Arc<Vec<f32>>)> {
        match self.scrub {
            Some(i) if i < self.timeline.len() => Some(self.timeline[i].clone()),
            _ => self.latest.as_ref().map(|s| (s.iteration, s.syn.clone())),
        }
    }

    /// The grids (initial, synthetic, real) and the timeline.
    pub(super) fn grids(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        let Some(info) = self.info.clone() else {
            ui.label("waiting for the session…");
            return;
        };
        let ds = &info.dataset;
        let ipc = info.settings.distill.ipc;
        // the synthetic texture follows the shown snapshot
        if let Some((it, px)) = self.shown()
            && self.textures.syn.as_ref().is_none_or(|(i, _)| *i != it)
        {
            let img = grid_rgba(&info, &px, ipc, &self.picked);
            match &mut self.textures.syn {
                Some((i, t)) => {
                    t.set(img, egui::TextureOptions::NEAREST);
                    *i = it;
                }
                None => self.textures.syn = Some((it, ctx.load_texture("synthetic", img, egui::TextureOptions::NEAREST))),
            }
        }
        // compare mode: the twin's latest set, its own texture
        let other = self.latest.as_ref().and_then(|s| s.other.as_ref()).map(|o| (o.iteration, o.syn.clone()));
        if let Some((it, px)) = &other
            && self.textures.syn_other.as_ref().is_none_or(|(i, _)| i != it)
        {
            let img = grid_rgba(&info, px, ipc, &self.picked);
            match &mut self.textures.syn_other {
                Some((i, t)) => {
                    t.set(img, egui::TextureOptions::NEAREST);
                    *i = *it;
                }
                None => self.textures.syn_other = Some((*it, ctx.load_texture("synthetic-twin", img, egui::TextureOptions::NEAREST))),
            }
        }
        let real_cols = info.real_per_class.min(ipc.max(5));
        let cols_total = ((if other.is_some() { 3 } else { 2 }) * ipc + real_cols) as f32;
        let cell = (ds.width + 1) as f32;
        // as wide as the panel allows, but no taller than ~40 % of the window so the disk stays in view
        let by_width = (ui.available_width() - 40.0) / (cols_total * cell);
        let by_height = ctx.content_rect().height() * 0.4 / (self.picked.len().max(1) as f32 * (ds.height + 1) as f32 + 1.0);
        let scale = by_width.min(by_height).clamp(0.5, 4.0);
        let shown_it = self.shown().map_or(0, |s| s.0);
        ui.horizontal_top(|ui| {
            if let Some(t) = &self.textures.initial {
                grid_block(ui, "initial", t, scale, None, ipc, ds.height, &self.picked, false);
            }
            if let Some((_, t)) = &self.textures.syn {
                let hovered = match self.hover {
                    Some(Hover::Syn(i)) => Some(i),
                    _ => None,
                };
                let method = info.settings.distill.method;
                let caption = if other.is_some() { format!("{} · iteration {shown_it}", method.name()) } else { format!("synthetic · iteration {shown_it}") };
                let (rect, cell_hover) = grid_block(ui, &caption, t, scale, hovered, ipc, ds.height, &self.picked, true);
                self.last_grid_rect = Some(rect);
                if let Some(i) = cell_hover {
                    self.next_hover = Some(Hover::Syn(i));
                }
                if let (Some((it, _)), Some((_, t))) = (&other, &self.textures.syn_other) {
                    let caption = format!("{} · iteration {it}", method.twin().name());
                    if let (_, Some(i)) = grid_block(ui, &caption, t, scale, hovered, ipc, ds.height, &self.picked, true) {
                        self.next_hover = Some(Hover::Syn(i));
                    }
                }
            }
            if let Some(t) = &self.textures.real {
                let (_, cell_hover) = grid_block(ui, "real samples", t, scale, None, info.real_per_class, ds.height, &self.picked, true);
                if let Some(i) = cell_hover {
                    self.next_hover = Some(Hover::Real(i));
                }
            }
        });
        // timeline
        if self.timeline.len() > 1 {
            ui.horizontal(|ui| {
                let last = self.timeline.len() - 1;
                let mut idx = self.scrub.unwrap_or(last);
                ui.label("timeline");
                let resp = ui.add(egui::Slider::new(&mut idx, 0..=last).show_value(false));
                ui.label(format!("iteration {}", self.timeline[idx.min(last)].0));
                if resp.changed() {
                    self.scrub = if idx == last { None } else { Some(idx) };
                }
                if self.scrub.is_some() && ui.button("follow latest").clicked() {
                    self.scrub = None;
                }
            });
        }
    }
}

/// RGBA grid image (rows = classes, `per` columns, 1-pixel gaps) with the export's display rule.
/// Only the classes in `rows` are drawn, in that order (a dataset with many classes shows the ones picked).
pub(super) fn grid_rgba(info: &SessionInfo, pixels: &[f32], per: usize, rows: &[usize]) -> egui::ColorImage {
    let ds = &info.dataset;
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let px = export::display_pixels(pixels, c, h * w, &ds.mean, &ds.std);
    let (gw, gh) = ((w + 1) * per + 1, (h + 1) * rows.len().max(1) + 1);
    let mut rgba = vec![40u8; gw * gh * 4];
    for a in rgba.chunks_mut(4) {
        a[3] = 255;
    }
    let n = pixels.len() / (c * h * w);
    for k in 0..n {
        let (class, col) = (k / per, k % per);
        let Some(row) = rows.iter().position(|&r| r == class) else { continue };
        for y in 0..h {
            for x in 0..w {
                let at = |ch: usize| px[((k * c + ch.min(c - 1)) * h + y) * w + x];
                let o = (((1 + row * (h + 1) + y) * gw) + 1 + col * (w + 1) + x) * 4;
                rgba[o..o + 4].copy_from_slice(&[at(0), at(1), at(2), 255]);
            }
        }
    }
    egui::ColorImage::from_rgba_unmultiplied([gw, gh], &rgba)
}

pub(super) fn grid_texture(ctx: &egui::Context, name: &str, info: &SessionInfo, pixels: &[f32], per: usize, rows: &[usize]) -> egui::TextureHandle {
    ctx.load_texture(name, grid_rgba(info, pixels, per, rows), egui::TextureOptions::NEAREST)
}

/// One grid with its caption; image i (class i / per, column i % per) sits in the row of its class in `rows`. Returns
/// the grid's rectangle and the image under the pointer.
#[allow(clippy::too_many_arguments)]
fn grid_block(ui: &mut egui::Ui, caption: &str, tex: &egui::TextureHandle, scale: f32, highlight: Option<usize>, per: usize, side: usize, rows: &[usize], hoverable: bool) -> (Rect, Option<usize>) {
    let mut out = (Rect::NOTHING, None);
    ui.vertical(|ui| {
        ui.label(caption);
        let size = tex.size_vec2() * scale;
        let (rect, resp) = ui.allocate_exact_size(size, Sense::hover());
        ui.painter().image(tex.id(), rect, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        let cell = (side as f32 + 1.0) * scale;
        let cell_rect = |i: usize| {
            let (class, col) = (i / per, i % per);
            let row = rows.iter().position(|&r| r == class)?;
            Some(Rect::from_min_size(rect.min + Vec2::new(col as f32 * cell + scale * 0.5, row as f32 * cell + scale * 0.5), Vec2::splat(cell)))
        };
        if let Some(r) = highlight.and_then(cell_rect) {
            ui.painter().rect_stroke(r, 0.0, Stroke::new(2.0, Color32::from_rgb(255, 200, 0)), egui::StrokeKind::Outside);
        }
        if let (Some(pos), true) = (resp.hover_pos(), hoverable) {
            let rel = pos - rect.min;
            let (col, row) = ((rel.x / cell) as usize, (rel.y / cell) as usize);
            if col < per && let Some(&class) = rows.get(row) {
                out.1 = Some(class * per + col);
            }
        }
        out.0 = rect;
    });
    out
}
