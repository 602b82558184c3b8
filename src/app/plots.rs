//! app::plots: the loss, per-class geodesic distance and DM-MSE curves, the quick evaluations' accuracies, and the
//! "what is happening" panel that follows one image through the method with live numbers.

use egui::Color32;

use super::{class_colour, session, Hover, HyperApp};
use crate::hdd::LorentzMap;
use crate::view;

impl HyperApp {
    pub(super) fn plots(&mut self, ui: &mut egui::Ui, classes: usize) {
        use egui_plot::{Legend, Line, Plot, Points};
        let w = ((ui.available_width() - 30.0) / 3.0).max(150.0);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.label("training loss (fresh random net each iteration)");
                let method = self.info.as_ref().map(|i| i.settings.distill.method);
                let mut plot = Plot::new("loss").width(w).height(180.0);
                if !self.loss_hist_other.is_empty() {
                    plot = plot.legend(Legend::default());
                }
                plot.show(ui, |p| {
                    p.line(Line::new(method.map_or("loss", |m| m.name()), self.loss_hist.clone()));
                    if !self.loss_hist_other.is_empty() {
                        // the twin's loss is a different quantity (DM's squared mean distance or HDD's λ·d_L): its own line
                        p.line(Line::new(method.map_or("twin", |m| m.twin().name()), self.loss_hist_other.clone()));
                    }
                });
            });
            ui.vertical(|ui| {
                ui.label("per-class geodesic distance d_L (view net)");
                Plot::new("dist").width(w).height(180.0).show(ui, |p| {
                    for (c, h) in self.dist_hist.iter().enumerate().filter(|(c, _)| self.picked.contains(c)) {
                        p.line(Line::new(format!("class {c}"), h.clone()).color(class_colour(c, classes)));
                    }
                });
            });
            ui.vertical(|ui| {
                ui.label("per-class DM mean-feature MSE (view net), for contrast");
                Plot::new("mse").width(w).height(180.0).show(ui, |p| {
                    for (c, h) in self.mse_hist.iter().enumerate().filter(|(c, _)| self.picked.contains(c)) {
                        p.line(Line::new(format!("class {c}"), h.clone()).color(class_colour(c, classes)));
                    }
                });
            });
        });
        if !self.acc_hist.is_empty() {
            ui.label("quick evaluation: test accuracy (%) ± std");
            let method = self.info.as_ref().map(|i| i.settings.distill.method);
            Plot::new("acc").height(160.0).legend(Legend::default()).show(ui, |p| {
                let series = [(method.map_or("mean", |m| m.name()), &self.acc_hist), (method.map_or("twin", |m| m.twin().name()), &self.acc_hist_other)];
                for (name, hist) in series.into_iter().filter(|(_, h)| !h.is_empty()) {
                    let pts: Vec<[f64; 2]> = hist.iter().map(|&(i, m, _)| [i as f64, m]).collect();
                    p.points(Points::new(name, pts).radius(4.0));
                    for &(i, m, s) in hist {
                        p.line(Line::new("± std", vec![[i as f64, m - s], [i as f64, m + s]]).color(Color32::GRAY));
                    }
                }
            });
        }
    }

    pub(super) fn explain(&mut self, ui: &mut egui::Ui) {
        ui.heading("What is happening");
        self.tour_panel(ui);
        let Some(snap) = self.latest.as_ref() else { return };
        let Some(info) = self.info.as_ref() else { return };
        let v = &snap.view;
        let s = &info.settings.distill;
        ui.label(format!(
            "Each iteration draws a fresh random ConvNet-3, embeds {} real images per class and the {} synthetic images \
             (same augmentation for both), and lowers {}. The pictures use one fixed random network so they do not jump.",
            s.batch_real, info.dataset.classes.len() * s.ipc, session::loss_name(s.method)
        ));
        ui.separator();
        let hovered = self.hover.or(Some(Hover::Syn(0)));
        let (feat, pt, label, what) = match hovered {
            Some(Hover::Syn(i)) if i < v.syn_feat.len() => (&v.syn_feat[i], &v.syn_pts[i], v.syn_labels[i], format!("synthetic image {i}")),
            Some(Hover::Real(j)) if j < v.real_feat.len() => (&v.real_feat[j], &v.real_pts[j], v.real_labels[j], format!("real image {j}")),
            _ => return,
        };
        let k = v.hdd.k;
        let class = info.dataset.classes.get(label).cloned().unwrap_or_default();
        ui.strong(format!("{what} · class {label} ({class})"));
        if self.hover.is_none() {
            ui.label(egui::RichText::new("hover an image or a point to follow it").small().weak());
        }
        let vn = view::norm(feat);
        let radius = v.radius(feat);
        ui.label(format!("1. features  v = f(x) ∈ R^{}:  ‖v‖ = {vn:.3}", feat.len()));
        match v.hdd.map {
            LorentzMap::Expmap => {
                let t = v.hdd.clamp.map_or(radius, |c| radius.min(c));
                let clamped = v.hdd.clamp.is_some_and(|c| radius > c);
                ui.label(format!(
                    "2. exp map at the origin:  ‖v‖/√k = {radius:.3}{}  →  x = (√k cosh t, √k sinh t · v/‖v‖),  t = {t:.3}",
                    if clamped { " > clamp, so t is clamped" } else { "" }
                ));
            }
            LorentzMap::Projx => {
                ui.label("2. projx: x = (√(k + ‖v‖²), v)");
            }
        }
        let lorentz_norm = crate::hdd::geoopt::inner(pt, pt);
        ui.label(format!("3. Lorentz point:  x₀ = {:.4e},  ⟨x,x⟩_L = {lorentz_norm:.4} (= −k = {:.4})", pt[0], -k));
        let to_real = crate::hdd::geoopt::dist(pt, &v.real_centroids[label], k);
        let to_syn = crate::hdd::geoopt::dist(pt, &v.syn_centroids[label], k);
        ui.label(format!("4. class centroids (Law):  d(x, real centroid) = {to_real:.4},  d(x, synthetic centroid) = {to_syn:.4}"));
        if let Some((_, pic)) = &self.disk[0] {
            let dist = match hovered {
                Some(Hover::Syn(i)) => pic.syn_dist.get(i),
                Some(Hover::Real(j)) => pic.real_dist.get(j),
                None => None,
            };
            if let Some(&dc) = dist {
                ui.label(format!(
                    "   on the disk: true distance to its centre d = {dc:.3}, drawn at ρ = tanh(d / 2s√k) = {:.4} with s = {:.2} \
                     (as if d were {:.3}); the exact disk would draw it at ρ = {:.6}",
                    view::disk_radius(dc, k, pic.scale),
                    pic.scale,
                    dc / pic.scale,
                    view::disk_radius(dc, k, 1.0)
                ));
            }
        }
        let d = v.class_dist[label];
        ui.label(format!(
            "5. geodesic distance between the class's centroids:  d_L = {d:.4}  (HDD loss term λ·d_L = {:.3});  DM's mean-feature MSE = {:.4e}",
            s.lambda as f64 * d,
            v.class_mse[label]
        ));
        if let Some(Hover::Syn(i)) = hovered
            && let Some(g) = snap.grad_norms.get(i)
        {
            ui.label(format!(
                "6. gradient on this image's pixels (last iteration's network):  ‖∂L/∂x‖ = {g:.4};  SGD moves the pixels by lr = {} with momentum {}",
                s.lr_img, s.momentum_img
            ));
        }
        if let Some((total, per)) = &snap.loss {
            ui.separator();
            ui.label(format!("last iteration's training loss: {total:.4} (class {label}: {:.4})", per.get(label).copied().unwrap_or(0.0)));
        }
    }
}
