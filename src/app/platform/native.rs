//! app::platform, desktop: a window, threads, files.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};

use super::PageEvent;
use crate::app::session::Cmd;
use crate::app::{AppSettings, EvalJob, EvalMsg, EvalSummary, HyperApp};
use crate::eval::{self, EvalConfig};
use crate::export;
use crate::gpu::Gpu;

/// Open the app in a native window.
pub fn run_native(settings: AppSettings, cache: PathBuf) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([1500.0, 950.0]).with_title("hyperdistill"),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: crate::app::wgpu_options(),
        ..Default::default()
    };
    eframe::run_native("hyperdistill", options, Box::new(move |cc| Ok(Box::new(HyperApp::new(cc, settings, cache)?))))
        .map_err(|e| anyhow::anyhow!("the app could not start: {e}"))
}

/// Features the app's device asks for: subgroups where the adapter has them (faster norm kernels on GPUs).
pub fn device_features(adapter: &wgpu::Adapter) -> wgpu::Features {
    adapter.features() & wgpu::Features::SUBGROUP
}

/// The compute device: eframe's, except on a software adapter (lavapipe, SwiftShader), which executes a queue's work
/// in order on the CPU — a frame would wait behind a whole iteration — so there the compute gets its own device on
/// the same adapter (its own queue) and the UI keeps its frame rate.
pub fn compute_gpu(rs: &eframe::egui_wgpu::RenderState) -> anyhow::Result<Gpu> {
    let separate = rs.adapter.get_info().device_type == wgpu::DeviceType::Cpu || std::env::var_os("HYPERDISTILL_APP_OWN_DEVICE").is_some();
    log::info!("app compute on {} device", if separate { "its own" } else { "eframe's" });
    Ok(if separate { pollster::block_on(Gpu::from_adapter(rs.adapter.clone()))? } else { Gpu::from_device(rs.adapter.clone(), rs.device.clone(), rs.queue.clone()) })
}

/// The distillation worker's thread, joined on drop: a process that exits while the worker still has GPU work in
/// flight can crash inside the driver's teardown (seen as a SIGSEGV at exit on lavapipe).
pub struct Worker(Option<std::thread::JoinHandle<()>>);

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            let _ = t.join();
        }
    }
}

/// Run the future `make` builds on a thread of its own, blocking on the GPU there.
pub fn spawn_worker<F, Fut>(make: F) -> anyhow::Result<Worker>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    Ok(Worker(Some(std::thread::Builder::new().name("distill".into()).spawn(move || pollster::block_on(make()))?)))
}

/// The worker's next command, waiting for it.
pub async fn next_cmd(rx: &Receiver<Cmd>) -> Option<Cmd> {
    rx.recv().ok()
}

/// Between two iterations: nothing to give back on a thread of its own.
pub async fn between_iterations() {}

/// Save an exported file into `dir` (atomic write). Returns what it did.
pub fn save(dir: &str, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = std::path::Path::new(dir).join(name);
    export::atomic_write(&path, bytes)?;
    Ok(format!("wrote {}", path.display()))
}

/// Train fresh networks on the shown set on a thread (the quick evaluation); progress and the result come back
/// through the app's `eval` job.
pub fn start_eval(app: &mut HyperApp, ctx: &egui::Context) {
    let (Some(info), Some(snap)) = (app.info.clone(), app.latest.as_ref()) else { return };
    let gpu = Gpu::from_device(app.device.0.clone(), app.device.1.clone(), app.device.2.clone());
    let s = &info.settings;
    let cfg = EvalConfig { epochs: s.eval_epochs, nets: s.eval_nets, width: s.distill.width, quick: true, ..EvalConfig::default() };
    let seed = s.distill.seed;
    // the shown set, and in compare mode the twin's after it (same evaluation seed: the same networks train on both)
    let mut sets = vec![(s.distill.method, false, snap)];
    if let Some(o) = &snap.other {
        sets.push((s.distill.method.twin(), true, o));
    }
    let sets: Vec<_> = sets
        .into_iter()
        .map(|(method, other, snap)| {
            let cfg = crate::distill::DistillConfig { method, ..s.distill.clone() };
            let labels: Vec<u32> = snap.view.syn_labels.iter().map(|&l| l as u32).collect();
            let (images, labels) = crate::mosaic::evaluation_set(snap.syn.as_ref().clone(), labels, info.dataset.shape(), cfg.uses_mosaic());
            (method.name(), other, images, labels)
        })
        .collect();
    let (tx, rx) = channel();
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new().name("evaluate".into()).spawn(move || {
        let n = sets.len();
        for (i, (method, other, images, labels)) in sets.into_iter().enumerate() {
            let progress_tx = tx.clone();
            let r = eval::evaluate(&gpu, &info.dataset, &images, &labels, &cfg, seed, &mut |net, ep| {
                let _ = progress_tx.send(EvalMsg::Progress(net, ep));
                ctx.request_repaint();
            });
            let last = i + 1 == n || r.is_err();
            let r = r.map(|r| EvalSummary { mean: r.mean, std: r.std, nets: r.accuracies.len(), epochs: r.epochs, method, other, last });
            let _ = tx.send(EvalMsg::Done(r.map_err(|e| format!("{e:#}"))));
            ctx.request_repaint();
            if last {
                break;
            }
        }
    });
    match spawned {
        Ok(_) => app.eval = Some(EvalJob { iteration: snap.iteration, rx, progress: (0, 0) }),
        Err(e) => app.error = Some(format!("could not start the evaluation: {e}")),
    }
}

/// Settings to and from a TOML file.
pub fn settings_ui(app: &mut HyperApp, ui: &mut egui::Ui) {
    let l = ui.strong("Settings file");
    ui.text_edit_singleline(&mut app.settings_path).labelled_by(l.id);
    ui.horizontal(|ui| {
        if ui.button("Save").clicked() {
            match app.settings.save(std::path::Path::new(&app.settings_path)) {
                Ok(()) => app.status = format!("saved settings to {}", app.settings_path),
                Err(e) => app.error = Some(format!("{e:#}")),
            }
        }
        if ui.button("Load + reset").clicked() {
            // checked before it replaces the current settings, so a refused file leaves the session as it was
            match AppSettings::load(std::path::Path::new(&app.settings_path)) {
                Ok(s) => match s.validate() {
                    Ok(()) => {
                        app.settings = s;
                        app.reset();
                    }
                    Err(e) => app.error = Some(format!("{}: {e}", app.settings_path)),
                },
                Err(e) => app.error = Some(format!("{e:#}")),
            }
        }
    });
}

/// Where exports go: a folder.
pub fn export_target_ui(app: &mut HyperApp, ui: &mut egui::Ui) {
    let l = ui.strong("Export to directory");
    ui.text_edit_singleline(&mut app.export_dir).labelled_by(l.id);
}

/// The page's events: a desktop window has none.
pub fn take_page_events() -> Vec<PageEvent> {
    vec![]
}

/// The page's status element: a desktop window has none.
pub fn report(_app: &HyperApp, _ctx: &egui::Context) {}

/// The autotuner measured new shapes: natively its table file was written as it measured (`KernelPicks::store`).
pub fn kernel_table_changed(_gpu: &Gpu) {}
