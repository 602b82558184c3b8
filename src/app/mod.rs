//! app: the egui/eframe desktop application, and the same app in the browser. It shares the wgpu device with the
//! compute engine, runs the distillation off the UI's path (`session`) and draws what it sends, one panel per file:
//! the controls (`controls`), the image grids and timeline (`grids`), the Poincaré disk and the PCA (`disk`), the plots
//! and the step-by-step explanation (`plots`), and the exports (`exporting`). Desktop and browser differ only in
//! `platform`. Settings (with the seed) round-trip through TOML (`settings`).

mod controls;
mod disk;
mod exporting;
mod grids;
pub mod platform;
mod plots;
pub mod session;
pub mod settings;
mod tour;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use web_time::Instant;

use egui::Rect;

use crate::view::{self, DiskPicture};
use grids::grid_texture;
pub use disk::class_colour;
use session::{Cmd, Msg, SessionInfo, Snapshot};
pub use settings::AppSettings;
pub use {eframe, egui};

/// eframe's wgpu setup for this app: the device gets the adapter's own limits. egui-wgpu would otherwise ask
/// for WebGL2 limits on the GL backend (no compute at all) and wgpu's defaults elsewhere (128 MiB bindings).
pub fn wgpu_options() -> eframe::egui_wgpu::WgpuConfiguration {
    let mut setup = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    setup.device_descriptor = Arc::new(|adapter: &wgpu::Adapter| wgpu::DeviceDescriptor {
        label: Some("hyperdistill app"),
        required_limits: adapter.limits(),
        required_features: platform::device_features(adapter),
        ..Default::default()
    });
    eframe::egui_wgpu::WgpuConfiguration { wgpu_setup: eframe::egui_wgpu::WgpuSetup::CreateNew(setup), ..Default::default() }
}

/// Where the disk is centred (a Lorentz isometry moves this point to the middle).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Centre {
    Origin,
    RealCentroid,
    Class(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Hover {
    Syn(usize),
    Real(usize),
}

struct EvalJob {
    iteration: usize,
    rx: Receiver<EvalMsg>,
    progress: (usize, usize),
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the browser runs no evaluation
enum EvalMsg {
    Progress(usize, usize),
    Done(Result<EvalSummary, String>),
}

/// What the plots need of an evaluation (mean, std as fractions).
struct EvalSummary {
    mean: f64,
    std: f64,
    nets: usize,
    epochs: usize,
    /// the method evaluated, whether it is compare mode's twin, and whether it is the last result of the job
    method: &'static str,
    other: bool,
    last: bool,
}

struct Textures {
    syn: Option<(usize, egui::TextureHandle)>,
    /// compare mode: the twin's latest synthetic set
    syn_other: Option<(usize, egui::TextureHandle)>,
    initial: Option<egui::TextureHandle>,
    real: Option<egui::TextureHandle>,
}

/// What a disk picture was drawn for: iteration, centre, radial scale (it is redrawn when one changes).
type DiskKey = (usize, Centre, view::RadialScale);
/// Two principal directions of the tangent space, kept between frames so the picture does not flip.
type Basis = [Vec<f64>; 2];

pub struct HyperApp {
    /// the settings being edited (applied on Reset)
    pub settings: AppSettings,
    tx: Sender<Cmd>,
    rx: Receiver<Msg>,
    /// the distillation worker (`platform::Worker`: a thread joined on drop, or a task in the browser)
    worker: Option<platform::Worker>,
    /// the compute device (eframe's own, except on software adapters: `platform::compute_gpu`)
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the quick evaluation's device, desktop only
    device: (wgpu::Adapter, wgpu::Device, wgpu::Queue),
    pub info: Option<Arc<SessionInfo>>,
    pub latest: Option<Box<Snapshot>>,
    /// (iteration, synthetic pixels) kept for the timeline
    pub timeline: Vec<(usize, Arc<Vec<f32>>)>,
    scrub: Option<usize>,
    pub running: bool,
    loss_hist: Vec<[f64; 2]>,
    /// compare mode: the twin's loss and quick evaluations
    loss_hist_other: Vec<[f64; 2]>,
    acc_hist_other: Vec<(usize, f64, f64)>,
    dist_hist: Vec<Vec<[f64; 2]>>,
    mse_hist: Vec<Vec<[f64; 2]>>,
    acc_hist: Vec<(usize, f64, f64)>,
    textures: Textures,
    centre: Centre,
    /// how the disk draws distances from its centre (auto: the median real point at radius ½)
    pub radial: view::RadialScale,
    /// the guided tour's step (None: closed)
    pub tour: Option<usize>,
    /// the classes the grids and the disk show (all up to 10; else 10 spread over the labels, changed in the controls)
    pub picked: Vec<usize>,
    /// the factor the slider sets for `RadialScale::Factor`
    radial_factor: f64,
    /// the disk pictures drawn (slot 1: the twin's in compare mode) and their PCA bases, kept between frames
    disk: [Option<(DiskKey, DiskPicture)>; 2],
    euclid: Option<(usize, (Vec<[f64; 2]>, Vec<[f64; 2]>))>,
    disk_basis: [Option<Basis>; 2],
    euclid_basis: Option<[Vec<f64>; 2]>,
    hover: Option<Hover>,
    next_hover: Option<Hover>,
    pub status: String,
    pub error: Option<String>,
    it_per_s: Option<f64>,
    last_snapshot_at: Option<Instant>,
    last_frame: Option<Instant>,
    /// exponential average of the time between frames, in seconds
    pub frame_seconds: Option<f64>,
    eval: Option<EvalJob>,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // a file: desktop only
    settings_path: String,
    pub export_dir: String,
    /// Where the synthetic grid and the disk were drawn in the last frame (points); tests read the pixels there.
    pub last_grid_rect: Option<Rect>,
    pub last_disk_rect: Option<Rect>,
    /// where the first disk drew its first synthetic point of the classes shown (points; the browser test clicks it)
    pub last_syn_point: Option<egui::Pos2>,
    /// how many disks the last frame drew (two in compare mode)
    pub disks_drawn: usize,
    /// start playing as soon as the dataset is open (the browser demo does)
    pub autoplay: bool,
    /// frames drawn so far
    pub frames: u64,
}

impl Drop for HyperApp {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Quit);
        // The worker reads Quit between iterations: wait for the one in flight (seconds at most) so that no GPU
        // work is running when the process tears the device down.
        drop(self.worker.take());
    }
}

const MAX_TIMELINE: usize = 400;

impl HyperApp {
    pub fn new(cc: &eframe::CreationContext<'_>, settings: AppSettings, cache: PathBuf) -> anyhow::Result<Self> {
        let rs = cc
            .wgpu_render_state
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the app needs eframe's wgpu renderer (no wgpu render state)"))?;
        install_fonts(&cc.egui_ctx);
        let gpu = platform::compute_gpu(rs)?;
        let device = (gpu.adapter.clone(), gpu.device.clone(), gpu.queue.clone());
        let (tx, worker_rx) = channel();
        let (worker_tx, rx) = channel();
        let ctx = cc.egui_ctx.clone();
        let repaint = move || ctx.request_repaint();
        let worker = platform::spawn_worker(move || session::worker(gpu, worker_rx, worker_tx, Box::new(repaint), cache))?;
        let app = HyperApp {
            settings: settings.clone(),
            tx,
            rx,
            worker: Some(worker),
            device,
            info: None,
            latest: None,
            timeline: vec![],
            scrub: None,
            running: false,
            loss_hist: vec![],
            loss_hist_other: vec![],
            acc_hist_other: vec![],
            dist_hist: vec![],
            mse_hist: vec![],
            acc_hist: vec![],
            textures: Textures { syn: None, syn_other: None, initial: None, real: None },
            centre: Centre::RealCentroid,
            radial: view::RadialScale::Auto,
            picked: vec![],
            tour: Some(0),
            radial_factor: 4.0,
            disk: [None, None],
            euclid: None,
            disk_basis: [None, None],
            euclid_basis: None,
            hover: None,
            next_hover: None,
            status: "opening the dataset…".into(),
            error: None,
            it_per_s: None,
            last_snapshot_at: None,
            last_frame: None,
            frame_seconds: None,
            eval: None,
            settings_path: "hyperdistill-app.toml".into(),
            export_dir: "hyperdistill-app-export".into(),
            last_grid_rect: None,
            last_disk_rect: None,
            last_syn_point: None,
            disks_drawn: 0,
            autoplay: false,
            frames: 0,
        };
        app.tx.send(Cmd::Reset(Box::new(settings)))?;
        Ok(app)
    }

    /// Start or pause the distillation (the buttons call this; tests too).
    pub fn set_running(&mut self, run: bool) {
        self.running = run;
        self.last_snapshot_at = None;
        let _ = self.tx.send(if run { Cmd::Play } else { Cmd::Pause });
    }

    pub fn reset(&mut self) {
        self.running = false;
        self.status = "opening the dataset…".into();
        let _ = self.tx.send(Cmd::Reset(Box::new(self.settings.clone())));
    }


    fn poll_messages(&mut self, ctx: &egui::Context) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::Ready(info) => {
                    self.timeline.clear();
                    self.scrub = None;
                    self.loss_hist.clear();
                    self.loss_hist_other.clear();
                    self.acc_hist_other.clear();
                    let classes = info.dataset.classes.len();
                    self.dist_hist = vec![vec![]; classes];
                    self.mse_hist = vec![vec![]; classes];
                    self.acc_hist.clear();
                    self.disk = [None, None];
                    self.euclid = None;
                    self.disk_basis = [None, None];
                    self.euclid_basis = None;
                    self.hover = None;
                    self.centre = Centre::RealCentroid;
                    self.error = None;
                    self.textures = Textures {
                        syn: None,
                        syn_other: None,
                        initial: None,
                        real: None,
                    };
                    self.picked = view::default_classes(classes);
                    self.info = Some(info.clone());
                    self.refresh_grids(ctx);
                    self.status = format!("{} · {} classes · {}", info.dataset.name, classes, info.adapter);
                    self.info = Some(info);
                    if std::mem::take(&mut self.autoplay) {
                        self.set_running(true);
                    }
                }
                Msg::Snapshot(s) => {
                    let now = Instant::now();
                    if self.running && let Some(prev) = self.last_snapshot_at {
                        let rate = 1.0 / now.duration_since(prev).as_secs_f64().max(1e-6);
                        self.it_per_s = Some(self.it_per_s.map_or(rate, |r| 0.8 * r + 0.2 * rate));
                    }
                    self.last_snapshot_at = Some(now);
                    let it = s.iteration as f64;
                    if let Some((total, _)) = &s.loss {
                        self.loss_hist.push([it, *total as f64]);
                    }
                    if let Some((total, _)) = s.other.as_ref().and_then(|o| o.loss.as_ref()) {
                        self.loss_hist_other.push([it, *total as f64]);
                    }
                    for (c, (d, m)) in s.view.class_dist.iter().zip(&s.view.class_mse).enumerate() {
                        if let (Some(dh), Some(mh)) = (self.dist_hist.get_mut(c), self.mse_hist.get_mut(c)) {
                            dh.push([it, *d]);
                            mh.push([it, *m]);
                        }
                    }
                    let every = self.info.as_ref().map_or(1, |i| i.settings.snapshot_every);
                    if s.iteration % every == 0 {
                        self.timeline.push((s.iteration, s.syn.clone()));
                        if self.timeline.len() > MAX_TIMELINE {
                            // thin the history: keep every other snapshot (the newest always stays)
                            let last = self.timeline.pop().unwrap();
                            self.timeline = self.timeline.iter().step_by(2).cloned().collect();
                            self.timeline.push(last);
                            self.scrub = None;
                        }
                    }
                    self.latest = Some(s);
                }
                Msg::Error(e) => {
                    self.running = false;
                    self.error = Some(e);
                }
            }
        }
        if let Some(job) = &mut self.eval {
            while let Ok(m) = job.rx.try_recv() {
                match m {
                    EvalMsg::Progress(net, ep) => job.progress = (net, ep),
                    EvalMsg::Done(Ok(r)) => {
                        let hist = if r.other { &mut self.acc_hist_other } else { &mut self.acc_hist };
                        hist.push((job.iteration, 100.0 * r.mean, 100.0 * r.std));
                        self.status = format!(
                            "quick evaluation ({}) at iteration {}: {:.2} ± {:.2} % ({} nets × {} epochs)",
                            r.method,
                            job.iteration,
                            100.0 * r.mean,
                            100.0 * r.std,
                            r.nets,
                            r.epochs
                        );
                        // in compare mode the twin's result follows
                        if r.last {
                            self.eval = None;
                            break;
                        }
                    }
                    EvalMsg::Done(Err(e)) => {
                        self.error = Some(format!("evaluation failed: {e}"));
                        self.eval = None;
                        break;
                    }
                }
            }
        }
    }


    /// Show these classes (grids and disk); the textures of the initial and real grids are redrawn.
    pub fn set_picked(&mut self, ctx: &egui::Context, mut picked: Vec<usize>) {
        let classes = self.info.as_ref().map_or(0, |i| i.dataset.classes.len());
        picked.retain(|&c| c < classes);
        picked.sort_unstable();
        picked.dedup();
        if picked.is_empty() || picked == self.picked {
            return;
        }
        self.picked = picked;
        if let Centre::Class(c) = self.centre
            && !self.picked.contains(&c)
        {
            self.centre = Centre::RealCentroid;
        }
        self.refresh_grids(ctx);
    }

    fn refresh_grids(&mut self, ctx: &egui::Context) {
        let Some(info) = self.info.clone() else { return };
        self.textures.initial = Some(grid_texture(ctx, "initial", &info, &info.initial, info.settings.distill.ipc, &self.picked));
        self.textures.real = Some(grid_texture(ctx, "real", &info, &info.real, info.real_per_class, &self.picked));
        self.textures.syn = None;
        self.textures.syn_other = None;
    }

    /// Centre the disk on class `c`'s real centroid and show that class alone (`None`: all classes, on the real centroid).
    pub fn centre_on_class(&mut self, c: Option<usize>) {
        self.centre = c.map_or(Centre::RealCentroid, Centre::Class);
    }

    /// The disk as last drawn (tests check its placement); slot 1 is compare mode's second disk.
    pub fn disk_picture(&self, slot: usize) -> Option<&DiskPicture> {
        self.disk.get(slot)?.as_ref().map(|(_, p)| p)
    }

    /// Compare mode: whether the twin's grid has been drawn.
    pub fn twin_grid_drawn(&self) -> bool {
        self.textures.syn_other.is_some()
    }

    fn start_eval(&mut self, ctx: &egui::Context) {
        platform::start_eval(self, ctx);
    }

    /// The central panel: grids and timeline, the disk and the PCA, the plots.
    fn central(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        self.grids(ui, ctx);
        let Some(info) = self.info.clone() else { return };
        if self.latest.is_none() {
            return;
        }
        ui.separator();
        self.disks(ui, &info);
        ui.separator();
        self.plots(ui, info.dataset.classes.len());
    }
}

/// egui's proportional font (Ubuntu Light) lacks ‖ ⟨ ⟩ ∈ → ● ○ ■ ▶, which the explanations use; the monospace
/// Hack (also built in) has them, so it becomes the proportional family's fallback.
pub fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if fonts.font_data.contains_key("Hack")
        && let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional)
        && !family.iter().any(|f| f == "Hack")
    {
        family.push("Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

impl eframe::App for HyperApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let now = Instant::now();
        if let Some(prev) = self.last_frame {
            let dt = now.duration_since(prev).as_secs_f64();
            self.frame_seconds = Some(self.frame_seconds.map_or(dt, |f| 0.9 * f + 0.1 * dt));
        }
        self.last_frame = Some(now);
        self.frames += 1;
        for ev in platform::take_page_events() {
            match ev {
                platform::PageEvent::OpenDataset(spec) => {
                    self.settings.dataset = spec;
                    self.reset();
                }
            }
        }
        self.poll_messages(&ctx);
        self.hover = self.next_hover.take();

        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui, &ctx));
        egui::Panel::left("controls").default_size(270.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.controls(ui, &ctx));
        });
        egui::Panel::right("explain").default_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.explain(ui));
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.central(ui, &ctx));
        });
        self.tour_highlight(&ctx);
        if self.running || self.eval.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        platform::report(self, &ctx);
    }
}
