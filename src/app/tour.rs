//! app::tour: a short guided tour — seven steps, each pointing at one part of the window and saying what to watch —
//! shown at the top of the "What is happening" panel (so it covers nothing), dismissible, restarted from the top bar.

use egui::{Color32, Stroke};

use super::HyperApp;

/// What a step points at: a panel whose rectangle the app knows is outlined; the others are named in the text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    Grid,
    Disk,
}

const STEPS: [(&str, &str, Target); 7] = [
    (
        "Start",
        "The left panel holds the dataset, the method (DM, or DM with HDD's hyperbolic matching) and its options. \
         Press ▶ Play at the top to distill; Step runs one iteration, Reset applies changed options.",
        Target::None,
    ),
    (
        "The images",
        "One row per class. 'initial' is where the synthetic images started (real photos); the synthetic grid is what \
         the method has made of them so far; the real samples are for comparison. Watch the synthetic images turn into \
         class prototypes.",
        Target::Grid,
    ),
    (
        "Going back in time",
        "The timeline under the grids scrubs through the iterations kept; 'follow latest' returns to the live set.",
        Target::Grid,
    ),
    (
        "The Poincaré disk",
        "Each dot is an image's features mapped onto hyperbolic space: faded dots are real images, outlined dots the \
         synthetic ones, ○ and ■ each class's real and synthetic centroids, joined by their geodesic. HDD's loss is the \
         length of those geodesics: watch them shrink.",
        Target::Disk,
    ),
    (
        "Reading distances",
        "'auto' divides every distance from the centre by s so the picture is legible (with the authors' settings the \
         exact disk puts every point on its rim); 'exact' shows the true disk. Click a point to see its class alone, \
         with a histogram of distances to its centroid: do the synthetic images sit nearer than the real ones?",
        Target::Disk,
    ),
    (
        "Curves and accuracy",
        "Below the disk: the training loss, each class's geodesic distance and DM's mean-feature error under one fixed \
         network. 'Evaluate current set' (left) trains fresh networks on the synthetic images alone and plots their \
         accuracy on the real test set.",
        Target::None,
    ),
    (
        "DM against HDD",
        "Hover any image or point: this panel follows it through the method with live numbers. Tick 'compare with …' \
         and Reset to run the method and its twin side by side from the same start.",
        Target::None,
    ),
];

impl HyperApp {
    /// The tour's current step, with Back / Next / Close, at the top of the explanation panel.
    pub(super) fn tour_panel(&mut self, ui: &mut egui::Ui) {
        let Some(k) = self.tour else { return };
        let k = k.min(STEPS.len() - 1);
        let (title, text, _) = STEPS[k];
        egui::Frame::group(ui.style()).fill(ui.visuals().faint_bg_color).show(ui, |ui| {
            ui.strong(format!("Tour {}/{} · {title}", k + 1, STEPS.len()));
            ui.label(text);
            ui.horizontal(|ui| {
                if ui.add_enabled(k > 0, egui::Button::new("Back")).clicked() {
                    self.tour = Some(k - 1);
                }
                if k + 1 < STEPS.len() {
                    if ui.button("Next").clicked() {
                        self.tour = Some(k + 1);
                    }
                } else if ui.button("Done").clicked() {
                    self.tour = None;
                }
                if ui.button("Close").on_hover_text("the Tour button at the top starts it again").clicked() {
                    self.tour = None;
                }
            });
        });
        ui.add_space(6.0);
    }

    /// Outline the part of the window the current step talks about (drawn above everything, outside the part).
    pub(super) fn tour_highlight(&self, ctx: &egui::Context) {
        let Some(k) = self.tour else { return };
        let rect = match STEPS[k.min(STEPS.len() - 1)].2 {
            Target::Grid => self.last_grid_rect,
            Target::Disk => self.last_disk_rect,
            Target::None => None,
        };
        if let Some(r) = rect {
            let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("hyperdistill-tour")));
            painter.rect_stroke(r.expand(4.0), 4.0, Stroke::new(3.0, Color32::from_rgb(255, 170, 0)), egui::StrokeKind::Outside);
        }
    }
}
