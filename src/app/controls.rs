//! app::controls: the top bar (play, step, reset, rates) and the left panel — dataset, method and its options,
//! settings file or link, export, quick evaluation.

use egui::Color32;

use super::session::Cmd;
use super::{platform, HyperApp};
use crate::distill::{Init, Method};
use crate::hdd::LorentzMap;

impl HyperApp {
    pub(super) fn top_bar(&mut self, ui: &mut egui::Ui, _ctx: &egui::Context) {
        ui.horizontal(|ui| {
            ui.heading("hyperdistill");
            let ready = self.info.is_some();
            if self.running {
                if ui.button("■ Pause").clicked() {
                    self.set_running(false);
                }
            } else if ui.add_enabled(ready, egui::Button::new("▶ Play")).clicked() {
                self.set_running(true);
            }
            if ui.add_enabled(ready && !self.running, egui::Button::new("Step")).clicked() {
                let _ = self.tx.send(Cmd::Step);
            }
            if ui.button("Reset").on_hover_text("apply the settings on the left and start again").clicked() {
                self.reset();
            }
            if ui.button("Tour").on_hover_text("a seven-step tour of the window").clicked() {
                self.tour = Some(0);
            }
            ui.separator();
            let it = self.latest.as_ref().map_or(0, |s| s.iteration);
            ui.label(format!("iteration {it}"));
            if let Some(r) = self.it_per_s.filter(|_| self.running) {
                ui.label(format!("{r:.2} it/s"));
            }
            if let Some(s) = self.latest.as_ref().and_then(|s| s.step_seconds) {
                ui.label(format!("GPU step {:.0} ms", s * 1e3));
            }
            if let Some(f) = self.frame_seconds {
                ui.label(format!("frame {:.0} ms", f * 1e3));
            }
        });
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new(&self.status).small());
            if let Some(e) = &self.error {
                ui.colored_label(Color32::from_rgb(220, 60, 60), e);
            }
        });
    }

    pub(super) fn controls(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        let l = ui.strong("Dataset");
        ui.horizontal(|ui| {
            ui.text_edit_singleline(&mut self.settings.dataset)
                .labelled_by(l.id)
                .on_hover_text("\"embedded\" (built-in Fashion-MNIST subset), a directory or .zip with IDX, CIFAR, SVHN or image folders, or a cached dataset name");
        });
        ui.label(egui::RichText::new("Changes below apply on Reset.").small().weak());
        ui.separator();
        ui.strong("Method");
        let d = &mut self.settings.distill;
        let before = d.method;
        ui.horizontal(|ui| {
            ui.radio_value(&mut d.method, Method::Dm, "DM");
            ui.radio_value(&mut d.method, Method::DmHdd, "DM + HDD");
        });
        ui.horizontal(|ui| {
            ui.radio_value(&mut d.method, Method::Idm, "IDM").on_hover_text("queue of partly trained nets, 2×2 mosaics, CE regulariser, a step per class");
            ui.radio_value(&mut d.method, Method::IdmHdd, "IDM + HDD");
        });
        let twin = d.method.twin();
        ui.checkbox(&mut self.settings.compare, format!("compare with {}", twin.name())).on_hover_text(
            "run the twin method beside this one from the same seed — same initial images, networks, real batches and \
             augmentations — and show both grids, both disks and both losses (each iteration costs two)",
        );
        let d = &mut self.settings.distill;
        if d.method != before {
            // the method's own k, λ, lr_img and IDM options; the app's sizes (IPC, width, batch) stay
            let mut with = d.clone();
            with.apply_method_defaults();
            (d.k, d.lambda, d.lr_img, d.idm) = (with.k, with.lambda, with.lr_img, with.idm);
        }
        ui.add_enabled_ui(d.method.hdd(), |ui| {
            egui::Grid::new("hdd").num_columns(2).show(ui, |ui| {
                let l = ui.label("k").on_hover_text("geoopt's k: the hyperboloid ⟨x,x⟩ = −k, curvature −1/k");
                ui.add(egui::DragValue::new(&mut d.k).range(0.05..=100.0).speed(0.05)).labelled_by(l.id);
                ui.end_row();
                let l = ui.label("λ");
                ui.add(egui::DragValue::new(&mut d.lambda).range(0.0..=10000.0).speed(0.5)).labelled_by(l.id);
                ui.end_row();
                let cl = ui.label("clamp");
                ui.horizontal(|ui| {
                    let mut on = d.clamp.is_some();
                    if ui.checkbox(&mut on, "on").changed() {
                        d.clamp = if on { Some(crate::hdd::EXP_MAX_NORM) } else { None };
                    }
                    if let Some(c) = &mut d.clamp {
                        ui.add(egui::DragValue::new(c).range(0.1..=50.0).speed(0.1)).labelled_by(cl.id);
                    } else {
                        ui.label("off");
                    }
                });
                ui.end_row();
                ui.label("map");
                ui.horizontal(|ui| {
                    ui.radio_value(&mut d.map, LorentzMap::Expmap, "expmap");
                    ui.radio_value(&mut d.map, LorentzMap::Projx, "projx");
                });
                ui.end_row();
                ui.label("weights");
                ui.checkbox(&mut d.weighted_centroid, "w(d) = τ/sinh τ")
                    .on_hover_text("the paper's hierarchical weighting of the centroid (not in the authors' code); no effect while the clamp is active");
                ui.end_row();
            });
        });
        ui.separator();
        egui::Grid::new("distill").num_columns(2).show(ui, |ui| {
            let l = ui.label("IPC");
            ui.add(egui::DragValue::new(&mut d.ipc).range(1..=50)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("lr (images)");
            ui.add(egui::DragValue::new(&mut d.lr_img).range(0.0..=100.0).speed(0.05)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("batch_real");
            ui.add(egui::DragValue::new(&mut d.batch_real).range(1..=1024)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("ConvNet width");
            ui.add(egui::DragValue::new(&mut d.width).range(1..=256)).labelled_by(l.id);
            ui.end_row();
            let l = ui.label("seed");
            ui.add(egui::DragValue::new(&mut d.seed)).labelled_by(l.id);
            ui.end_row();
            ui.label("init");
            ui.horizontal(|ui| {
                ui.radio_value(&mut d.init, Init::Real, "real");
                ui.radio_value(&mut d.init, Init::Noise, "noise");
            });
            ui.end_row();
            ui.label("DSA");
            let mut on = d.dsa != "none";
            if ui.checkbox(&mut on, "augment").changed() {
                d.dsa = if on { crate::augment::DEFAULT_STRATEGY.to_string() } else { "none".into() };
            }
            ui.end_row();
        });
        ui.separator();
        platform::settings_ui(self, ui);
        ui.separator();
        platform::export_target_ui(self, ui);
        ui.horizontal(|ui| {
            if ui.add_enabled(self.latest.is_some(), egui::Button::new("Set (safetensors + PNG)")).clicked() {
                self.export_current();
            }
            if ui.add_enabled(!self.timeline.is_empty(), egui::Button::new("Evolution GIF")).clicked() {
                self.export_gif();
            }
        });
        ui.separator();
        ui.strong("Evaluate");
        ui.horizontal(|ui| {
            let l = ui.label("epochs");
            ui.add(egui::DragValue::new(&mut self.settings.eval_epochs).range(1..=2000)).labelled_by(l.id);
            let l = ui.label("nets");
            ui.add(egui::DragValue::new(&mut self.settings.eval_nets).range(1..=10)).labelled_by(l.id);
        });
        match &self.eval {
            Some(job) => {
                let (net, ep) = job.progress;
                let nets = self.info.as_ref().map_or(1, |i| i.settings.eval_nets);
                ui.label(format!("quick evaluation of iteration {}: net {}/{nets}, epoch {ep}", job.iteration, net + 1));
            }
            None => {
                if ui
                    .add_enabled(self.latest.is_some(), egui::Button::new("Evaluate current set (quick)"))
                    .on_hover_text("trains fresh ConvNet-3s on the synthetic set in the background and tests them on the real test split")
                    .clicked()
                {
                    self.start_eval(ctx);
                }
            }
        }
        self.class_picker(ui, ctx);
    }

    /// Which classes the grids and the disk show: every class of a small dataset; of a large one (CIFAR-100, Tiny
    /// ImageNet) ten spread over the labels by default, changed here. Distillation always covers every class.
    fn class_picker(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        let Some(info) = self.info.clone() else { return };
        let names = &info.dataset.classes;
        ui.separator();
        ui.strong(format!("Classes shown ({} of {})", self.picked.len(), names.len()));
        let mut picked = self.picked.clone();
        ui.horizontal(|ui| {
            if ui.button("10 spread").on_hover_text("ten classes spread over the label range").clicked() {
                picked = crate::view::default_classes(names.len());
            }
            if ui.add_enabled(names.len() <= 40, egui::Button::new("all")).on_hover_text("every class (up to 40: more would not be legible)").clicked() {
                picked = (0..names.len()).collect();
            }
        });
        egui::ScrollArea::vertical().id_salt("class-picker").max_height(180.0).show(ui, |ui| {
            for (c, name) in names.iter().enumerate() {
                let mut on = picked.contains(&c);
                let colour = super::class_colour(c, names.len());
                let text = egui::RichText::new(format!("■ {c} {name}")).color(if on { colour } else { ui.visuals().weak_text_color() });
                if ui.checkbox(&mut on, text).changed() {
                    if on {
                        picked.push(c);
                    } else if picked.len() > 1 {
                        picked.retain(|&x| x != c);
                    }
                }
            }
        });
        if picked != self.picked {
            self.set_picked(ctx, picked);
        }
    }

}
