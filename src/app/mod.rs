//! app: the egui/eframe desktop application. It shares eframe's wgpu device with the compute engine, runs the
//! distillation on a worker thread (`session`) and draws what it sends: the synthetic grid and its timeline,
//! the Poincaré disk and a Euclidean PCA of the features, loss/distance/accuracy plots, and an explanation of
//! each step with live numbers. Settings (with the seed) round-trip through TOML.

pub mod session;
pub mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use web_time::Instant;

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};

use crate::distill::{Init, Method};
#[cfg(not(target_arch = "wasm32"))]
use crate::eval::{self, EvalConfig};
use crate::export::{self, SynSet};
use crate::gpu::Gpu;
use crate::lorentz::LorentzMap;
use crate::view::{self, DiskPicture};
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
        // subgroups pick faster norm kernels on GPUs (`Gpu::subgroup_size`); not in the browser, where WGSL would
        // need an `enable subgroups;` that naga does not take yet
        #[cfg(not(target_arch = "wasm32"))]
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        ..Default::default()
    });
    eframe::egui_wgpu::WgpuConfiguration { wgpu_setup: eframe::egui_wgpu::WgpuSetup::CreateNew(setup), ..Default::default() }
}

/// Open the app in a native window.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_native(settings: AppSettings, cache: PathBuf) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([1500.0, 950.0]).with_title("hyperdistill"),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: wgpu_options(),
        ..Default::default()
    };
    eframe::run_native("hyperdistill", options, Box::new(move |cc| Ok(Box::new(HyperApp::new(cc, settings, cache)?))))
        .map_err(|e| anyhow::anyhow!("the app could not start: {e}"))
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

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
enum EvalMsg {
    Progress(usize, usize),
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Done(Result<EvalSummary, String>),
}

/// What the plots need of an evaluation (mean, std as fractions).
struct EvalSummary {
    mean: f64,
    std: f64,
    nets: usize,
    epochs: usize,
}

struct Textures {
    syn: Option<(usize, egui::TextureHandle)>,
    initial: Option<egui::TextureHandle>,
    real: Option<egui::TextureHandle>,
}

pub struct HyperApp {
    /// the settings being edited (applied on Reset)
    pub settings: AppSettings,
    tx: Sender<Cmd>,
    rx: Receiver<Msg>,
    /// the native worker thread, joined on drop: a process that exits while the worker still has GPU work in
    /// flight can crash inside the driver's teardown (seen as a SIGSEGV at exit on lavapipe)
    #[cfg(not(target_arch = "wasm32"))]
    worker: Option<std::thread::JoinHandle<()>>,
    /// the compute device (eframe's own, except on software adapters: see `new`)
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    device: (wgpu::Adapter, wgpu::Device, wgpu::Queue),
    pub info: Option<Arc<SessionInfo>>,
    pub latest: Option<Box<Snapshot>>,
    /// (iteration, synthetic pixels) kept for the timeline
    pub timeline: Vec<(usize, Arc<Vec<f32>>)>,
    scrub: Option<usize>,
    pub running: bool,
    loss_hist: Vec<[f64; 2]>,
    dist_hist: Vec<Vec<[f64; 2]>>,
    mse_hist: Vec<Vec<[f64; 2]>>,
    acc_hist: Vec<(usize, f64, f64)>,
    textures: Textures,
    centre: Centre,
    disk: Option<((usize, Centre), DiskPicture)>,
    euclid: Option<(usize, (Vec<[f64; 2]>, Vec<[f64; 2]>))>,
    disk_basis: Option<[Vec<f64>; 2]>,
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
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    settings_path: String,
    pub export_dir: String,
    /// Where the synthetic grid and the disk were drawn in the last frame (points); tests read the pixels there.
    pub last_grid_rect: Option<Rect>,
    pub last_disk_rect: Option<Rect>,
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
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
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
        // Share eframe's device. Exception: a software adapter (lavapipe, SwiftShader) executes a queue's work in
        // order on the CPU, so a frame would wait behind a whole distillation iteration; there the compute gets its
        // own device on the same adapter (its own queue), and the UI keeps its frame rate.
        // (A browser's WebGPU adapter gives out one device only, so there the device is always shared.)
        #[cfg(not(target_arch = "wasm32"))]
        let separate = rs.adapter.get_info().device_type == wgpu::DeviceType::Cpu || std::env::var_os("HYPERDISTILL_APP_OWN_DEVICE").is_some();
        #[cfg(target_arch = "wasm32")]
        let separate = false;
        let gpu = if separate {
            #[cfg(not(target_arch = "wasm32"))]
            {
                pollster::block_on(Gpu::from_adapter(rs.adapter.clone()))?
            }
            #[cfg(target_arch = "wasm32")]
            unreachable!()
        } else {
            Gpu::from_device(rs.adapter.clone(), rs.device.clone(), rs.queue.clone())
        };
        let device = (gpu.adapter.clone(), gpu.device.clone(), gpu.queue.clone());
        log::info!("app compute on {} device", if separate { "its own" } else { "eframe's" });
        let (tx, worker_rx) = channel();
        let (worker_tx, rx) = channel();
        let ctx = cc.egui_ctx.clone();
        let repaint = move || ctx.request_repaint();
        #[cfg(not(target_arch = "wasm32"))]
        let worker = std::thread::Builder::new()
            .name("distill".into())
            .spawn(move || pollster::block_on(session::worker(gpu, worker_rx, worker_tx, Box::new(repaint), cache)))?;
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_futures::spawn_local(session::worker(gpu, worker_rx, worker_tx, Box::new(repaint), cache));
        let app = HyperApp {
            settings: settings.clone(),
            tx,
            rx,
            #[cfg(not(target_arch = "wasm32"))]
            worker: Some(worker),
            device,
            info: None,
            latest: None,
            timeline: vec![],
            scrub: None,
            running: false,
            loss_hist: vec![],
            dist_hist: vec![],
            mse_hist: vec![],
            acc_hist: vec![],
            textures: Textures { syn: None, initial: None, real: None },
            centre: Centre::RealCentroid,
            disk: None,
            euclid: None,
            disk_basis: None,
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
                    let classes = info.dataset.classes.len();
                    self.dist_hist = vec![vec![]; classes];
                    self.mse_hist = vec![vec![]; classes];
                    self.acc_hist.clear();
                    self.disk = None;
                    self.euclid = None;
                    self.disk_basis = None;
                    self.euclid_basis = None;
                    self.hover = None;
                    self.centre = Centre::RealCentroid;
                    self.error = None;
                    self.textures = Textures {
                        syn: None,
                        initial: Some(grid_texture(ctx, "initial", &info, &info.initial, info.settings.distill.ipc)),
                        real: Some(grid_texture(ctx, "real", &info, &info.real, info.real_per_class)),
                    };
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
                        self.acc_hist.push((job.iteration, 100.0 * r.mean, 100.0 * r.std));
                        self.status = format!(
                            "quick evaluation at iteration {}: {:.2} ± {:.2} % ({} nets × {} epochs)",
                            job.iteration,
                            100.0 * r.mean,
                            100.0 * r.std,
                            r.nets,
                            r.epochs
                        );
                        self.eval = None;
                        break;
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

    #[cfg(target_arch = "wasm32")]
    fn start_eval(&mut self, _ctx: &egui::Context) {
        self.error = Some("evaluation trains networks for minutes; it runs in the desktop app and the CLI, not in the browser".into());
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn start_eval(&mut self, ctx: &egui::Context) {
        let (Some(info), Some(snap)) = (self.info.clone(), self.latest.as_ref()) else { return };
        let gpu = Gpu::from_device(self.device.0.clone(), self.device.1.clone(), self.device.2.clone());
        let mut images = snap.syn.as_ref().clone();
        let mut labels: Vec<u32> = snap.view.syn_labels.iter().map(|&l| l as u32).collect();
        let s = &info.settings;
        if s.distill.uses_mosaic() {
            let ds = &info.dataset;
            (images, labels) = crate::mosaic::expand_set(&images, &labels, ds.channels, ds.height, ds.width);
        }
        let cfg = EvalConfig { epochs: s.eval_epochs, nets: s.eval_nets, width: s.distill.width, quick: true, ..EvalConfig::default() };
        let seed = s.distill.seed;
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("evaluate".into()).spawn(move || {
            let progress_tx = tx.clone();
            let r = eval::evaluate(&gpu, &info.dataset, &images, &labels, &cfg, seed, &mut |net, ep| {
                let _ = progress_tx.send(EvalMsg::Progress(net, ep));
                ctx.request_repaint();
            });
            let r = r.map(|r| EvalSummary { mean: r.mean, std: r.std, nets: r.accuracies.len(), epochs: r.epochs });
            let _ = tx.send(EvalMsg::Done(r.map_err(|e| format!("{e:#}"))));
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.eval = Some(EvalJob { iteration: snap.iteration, rx, progress: (0, 0) }),
            Err(e) => self.error = Some(format!("could not start the evaluation: {e}")),
        }
    }

    /// The synthetic grid image as it should appear on screen (the shown snapshot, display rule applied).
    pub fn synthetic_grid_image(&self) -> Option<egui::ColorImage> {
        let (info, (_, px)) = (self.info.as_ref()?, self.shown()?);
        Some(grid_rgba(info, &px, info.settings.distill.ipc))
    }

    /// The synthetic pixels on display: the scrubbed snapshot, or the latest.
    fn shown(&self) -> Option<(usize, Arc<Vec<f32>>)> {
        match self.scrub {
            Some(i) if i < self.timeline.len() => Some(self.timeline[i].clone()),
            _ => self.latest.as_ref().map(|s| (s.iteration, s.syn.clone())),
        }
    }

    /// Write the shown synthetic set to `export_dir` (safetensors + PNG grid); in a browser, download them.
    pub fn export_current(&mut self) {
        let (Some(info), Some((iteration, syn))) = (self.info.clone(), self.shown()) else { return };
        let result = (|| -> anyhow::Result<String> {
            let ds = &info.dataset;
            let labels = (0..ds.classes.len()).flat_map(|c| std::iter::repeat_n(c as u32, info.settings.distill.ipc)).collect();
            let meta = info.settings.distill.metadata(&info.settings.dataset, ds, info.adapter.clone(), iteration, info.settings.to_toml().unwrap_or_default());
            let set = SynSet { images: syn.as_ref().clone(), labels, c: ds.channels, h: ds.height, w: ds.width, meta };
            let a = save(&self.export_dir, "synset.safetensors", &export::safetensors_bytes(&set)?)?;
            let b = save(&self.export_dir, "synset.png", &export::grid_png_bytes(&set, ds.classes.len(), info.settings.distill.ipc, &ds.mean, &ds.std)?)?;
            Ok(format!("{a} and {b} (iteration {iteration})"))
        })();
        match result {
            Ok(m) => self.status = m,
            Err(e) => self.error = Some(format!("export failed: {e:#}")),
        }
    }

    /// Write the timeline to `export_dir/evolution.gif` (at most ~100 frames); in a browser, download it.
    pub fn export_gif(&mut self) {
        let Some(info) = self.info.clone() else { return };
        let frames: Vec<_> = {
            let n = self.timeline.len();
            let stride = n.div_ceil(100).max(1);
            self.timeline.iter().enumerate().filter(|(i, _)| i % stride == 0 || *i + 1 == n).map(|(_, f)| f.clone()).collect()
        };
        match gif_bytes(&info, &frames).and_then(|b| save(&self.export_dir, "evolution.gif", &b)) {
            Ok(m) => self.status = format!("{m} ({} frames)", frames.len()),
            Err(e) => self.error = Some(format!("GIF export failed: {e:#}")),
        }
    }
}

/// Save an exported file: natively into `dir` (atomic write); in a browser as a download. Returns what it did.
#[cfg(not(target_arch = "wasm32"))]
fn save(dir: &str, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = std::path::Path::new(dir).join(name);
    export::atomic_write(&path, bytes)?;
    Ok(format!("wrote {}", path.display()))
}

#[cfg(target_arch = "wasm32")]
fn save(_dir: &str, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    crate::web::download(name, bytes).map_err(|e| anyhow::anyhow!("the browser refused the download: {e}"))?;
    Ok(format!("downloaded {name}"))
}

/// RGBA grid image (rows = classes, `per` columns, 1-pixel gaps) with the export's display rule.
fn grid_rgba(info: &SessionInfo, pixels: &[f32], per: usize) -> egui::ColorImage {
    let ds = &info.dataset;
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let classes = ds.classes.len();
    let px = export::display_pixels(pixels, c, h * w, &ds.mean, &ds.std);
    let (gw, gh) = ((w + 1) * per + 1, (h + 1) * classes + 1);
    let mut rgba = vec![40u8; gw * gh * 4];
    for a in rgba.chunks_mut(4) {
        a[3] = 255;
    }
    let n = pixels.len() / (c * h * w);
    for k in 0..n {
        let (row, col) = (k / per, k % per);
        if row >= classes {
            break;
        }
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

fn grid_texture(ctx: &egui::Context, name: &str, info: &SessionInfo, pixels: &[f32], per: usize) -> egui::TextureHandle {
    ctx.load_texture(name, grid_rgba(info, pixels, per), egui::TextureOptions::NEAREST)
}

fn gif_bytes(info: &SessionInfo, frames: &[(usize, Arc<Vec<f32>>)]) -> anyhow::Result<Vec<u8>> {
    use image::codecs::gif::{GifEncoder, Repeat};
    if frames.is_empty() {
        anyhow::bail!("no snapshots yet");
    }
    let mut bytes = vec![];
    {
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite)?;
        for (_, px) in frames {
            let img = grid_rgba(info, px, info.settings.distill.ipc);
            let rgba: Vec<u8> = img.pixels.iter().flat_map(|p| p.to_array()).collect();
            let buf = image::RgbaImage::from_raw(img.size[0] as u32, img.size[1] as u32, rgba)
                .ok_or_else(|| anyhow::anyhow!("internal: grid image of the wrong size"))?;
            let buf = image::imageops::resize(&buf, buf.width() * 2, buf.height() * 2, image::imageops::FilterType::Nearest);
            enc.encode_frame(image::Frame::from_parts(buf, 0, 0, image::Delay::from_numer_denom_ms(120, 1)))?;
        }
    }
    Ok(bytes)
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

/// A distinct colour per class (tab10 for up to ten classes, then evenly spaced hues).
pub fn class_colour(c: usize, classes: usize) -> Color32 {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    ];
    if classes <= 10 {
        let (r, g, b) = TAB10[c % 10];
        Color32::from_rgb(r, g, b)
    } else {
        egui::ecolor::Hsva::new(c as f32 / classes as f32, 0.75, 0.9, 1.0).into()
    }
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
        #[cfg(target_arch = "wasm32")]
        for ev in crate::web::take_events() {
            match ev {
                crate::web::PageEvent::OpenDataset(spec) => {
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
        if self.running || self.eval.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        #[cfg(target_arch = "wasm32")]
        self.report_to_page(&ctx);
    }
}

#[cfg(target_arch = "wasm32")]
impl HyperApp {
    /// Mirror the run's state into the page's status element (people see it; the browser test waits on it).
    fn report_to_page(&self, ctx: &egui::Context) {
        use crate::web::report;
        report("frames", &self.frames.to_string());
        report("iteration", &self.latest.as_ref().map_or(-1, |s| s.iteration as i64).to_string());
        report("running", &self.running.to_string());
        report("it-per-s", &self.it_per_s.map_or(String::new(), |r| format!("{r:.3}")));
        report("frame-ms", &self.frame_seconds.map_or(String::new(), |f| format!("{:.1}", f * 1000.0)));
        report("step-s", &self.latest.as_ref().and_then(|s| s.step_seconds).map_or(String::new(), |t| format!("{t:.3}")));
        report("loss", &self.latest.as_ref().and_then(|s| s.loss.as_ref()).map_or(String::new(), |l| format!("{:.4}", l.0)));
        report("dataset", &self.info.as_ref().map_or(String::new(), |i| format!("{} ({} train images)", i.dataset.name, i.dataset.train.len())));
        report("adapter", &self.info.as_ref().map_or(String::new(), |i| i.adapter.clone()));
        report("settings", &self.info.as_ref().map_or(String::new(), |i| {
            let d = &i.settings.distill;
            format!("{} ipc={} width={} batch_real={} seed={}", d.method.name(), d.ipc, d.width, d.batch_real, d.seed)
        }));
        report("disk-points", &self.disk.as_ref().map_or(0, |(_, p)| p.real.len() + p.syn.len()).to_string());
        report("disk-rect", &self.last_disk_rect.map_or(String::new(), |r| format!("{},{},{},{}", r.min.x, r.min.y, r.max.x, r.max.y)));
        report("grid-rect", &self.last_grid_rect.map_or(String::new(), |r| format!("{},{},{},{}", r.min.x, r.min.y, r.max.x, r.max.y)));
        report("pixels-per-point", &ctx.pixels_per_point().to_string());
        report("error", self.error.as_deref().unwrap_or(""));
    }
}

impl HyperApp {
    fn top_bar(&mut self, ui: &mut egui::Ui, _ctx: &egui::Context) {
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

    /// Settings to and from a TOML file (desktop) or a link with them in the URL hash (browser).
    #[cfg(not(target_arch = "wasm32"))]
    fn settings_io(&mut self, ui: &mut egui::Ui) {
        let l = ui.strong("Settings file");
        ui.text_edit_singleline(&mut self.settings_path).labelled_by(l.id);
        ui.horizontal(|ui| {
            if ui.button("Save").clicked() {
                match self.settings.save(std::path::Path::new(&self.settings_path)) {
                    Ok(()) => self.status = format!("saved settings to {}", self.settings_path),
                    Err(e) => self.error = Some(format!("{e:#}")),
                }
            }
            if ui.button("Load + reset").clicked() {
                // checked before it replaces the current settings, so a refused file leaves the session as it was
                match AppSettings::load(std::path::Path::new(&self.settings_path)) {
                    Ok(s) => match s.validate() {
                        Ok(()) => {
                            self.settings = s;
                            self.reset();
                        }
                        Err(e) => self.error = Some(format!("{}: {e}", self.settings_path)),
                    },
                    Err(e) => self.error = Some(format!("{e:#}")),
                }
            }
        });
    }

    #[cfg(target_arch = "wasm32")]
    fn settings_io(&mut self, ui: &mut egui::Ui) {
        ui.strong("Share");
        if ui.button("Copy link with these settings").on_hover_text("the settings and seed go into the URL's #hash").clicked() {
            match crate::web::share_link(&self.settings) {
                Some(link) => {
                    ui.ctx().copy_text(link);
                    self.status = "link copied (the address bar has it too)".into();
                }
                None => self.error = Some("could not build the link".into()),
            }
        }
        ui.label(egui::RichText::new("Your own IDX, CIFAR or zip files: use \"Open files\" above the app.").small().weak());
    }

    fn controls(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
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
                        d.clamp = if on { Some(crate::lorentz::EXP_MAX_NORM) } else { None };
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
        self.settings_io(ui);
        ui.separator();
        #[cfg(not(target_arch = "wasm32"))]
        {
            let l = ui.strong("Export to directory");
            ui.text_edit_singleline(&mut self.export_dir).labelled_by(l.id);
        }
        #[cfg(target_arch = "wasm32")]
        ui.strong("Export (downloads)");
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
    }

    fn central(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        let Some(info) = self.info.clone() else {
            ui.label("waiting for the session…");
            return;
        };
        let ds = &info.dataset;
        let ipc = info.settings.distill.ipc;
        let classes = ds.classes.len();
        // the synthetic texture follows the shown snapshot
        if let Some((it, px)) = self.shown()
            && self.textures.syn.as_ref().is_none_or(|(i, _)| *i != it)
        {
            let img = grid_rgba(&info, &px, ipc);
            match &mut self.textures.syn {
                Some((i, t)) => {
                    t.set(img, egui::TextureOptions::NEAREST);
                    *i = it;
                }
                None => self.textures.syn = Some((it, ctx.load_texture("synthetic", img, egui::TextureOptions::NEAREST))),
            }
        }
        let real_cols = info.real_per_class.min(ipc.max(5));
        let cols_total = (2 * ipc + real_cols) as f32;
        let cell = (ds.width + 1) as f32;
        // as wide as the panel allows, but no taller than ~40 % of the window so the disk stays in view
        let by_width = (ui.available_width() - 40.0) / (cols_total * cell);
        let by_height = ctx.content_rect().height() * 0.4 / (classes as f32 * (ds.height + 1) as f32 + 1.0);
        let scale = by_width.min(by_height).clamp(0.5, 4.0);
        let shown_it = self.shown().map_or(0, |s| s.0);
        ui.horizontal_top(|ui| {
            if let Some(t) = &self.textures.initial {
                grid_block(ui, "initial", t, scale, None, ipc, ds.height, None);
            }
            if let Some((_, t)) = &self.textures.syn {
                let hovered = match self.hover {
                    Some(Hover::Syn(i)) => Some(i),
                    _ => None,
                };
                let (rect, cell_hover) = grid_block(ui, &format!("synthetic · iteration {shown_it}"), t, scale, hovered, ipc, ds.height, Some(classes * ipc));
                self.last_grid_rect = Some(rect);
                if let Some(i) = cell_hover {
                    self.next_hover = Some(Hover::Syn(i));
                }
            }
            if let Some(t) = &self.textures.real {
                let (_, cell_hover) = grid_block(ui, "real samples", t, scale, None, info.real_per_class, ds.height, Some(classes * info.real_per_class));
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
        ui.separator();
        let Some(snap) = self.latest.as_ref() else { return };
        let view = snap.view.clone();
        let iteration = snap.iteration;
        ui.horizontal(|ui| {
            ui.strong("Poincaré disk");
            ui.label("centre:");
            ui.radio_value(&mut self.centre, Centre::Origin, "origin");
            ui.radio_value(&mut self.centre, Centre::RealCentroid, "real centroid");
            if let Centre::Class(c) = self.centre {
                ui.label(format!("class {c} ({})", ds.classes.get(c).map_or("", |s| s.as_str())));
            }
            ui.label(egui::RichText::new("(click a point to centre on its class)").small().weak());
        });
        let side = ((ui.available_width() - 20.0) / 2.0).clamp(200.0, 520.0);
        ui.horizontal_top(|ui| {
            self.disk_panel(ui, &view, iteration, side, classes);
            self.euclid_panel(ui, &view, iteration, side, classes);
        });
        if view.clamp_binds_all() {
            ui.colored_label(
                Color32::from_rgb(200, 140, 20),
                format!(
                    "Radius clamp active: every feature here has ‖v‖/√k above {}, so expmap0 puts every point at exactly that \
                     distance from the origin (centre the disk on the origin to see them on one circle). Only their directions \
                     differ; the class centroids sit inside the sphere, and HDD moves the synthetic centroid by turning directions.",
                    view.hyper.clamp.unwrap_or(0.0)
                ),
            );
        }
        ui.separator();
        self.plots(ui, classes);
    }

    fn disk_panel(&mut self, ui: &mut egui::Ui, view: &Arc<session::ViewFeatures>, iteration: usize, side: f32, classes: usize) {
        let key = (iteration, self.centre);
        if self.disk.as_ref().is_none_or(|(k, _)| *k != key) {
            let centre = match self.centre {
                Centre::Origin => {
                    let mut o = vec![0.0; view.real_centre.len()];
                    o[0] = view.hyper.k.sqrt();
                    o
                }
                Centre::RealCentroid => view.real_centre.clone(),
                Centre::Class(c) => view.real_centroids[c.min(classes - 1)].clone(),
            };
            let pic = view::disk_picture(&view.real_pts, &view.syn_pts, &view.real_centroids, &view.syn_centroids, &centre, view.hyper.k, self.disk_basis.as_ref());
            self.disk_basis = pic.basis.clone();
            self.disk = Some((key, pic));
        }
        let Some((_, pic)) = &self.disk else { return };
        let (resp, painter) = ui.allocate_painter(Vec2::splat(side), Sense::click());
        let rect = resp.rect;
        self.last_disk_rect = Some(rect);
        let r = side * 0.48;
        let c0 = rect.center();
        let to_screen = |p: &[f64; 2]| Pos2::new(c0.x + r * p[0] as f32, c0.y - r * p[1] as f32);
        painter.rect_filled(rect, 4.0, Color32::from_gray(250));
        painter.circle_filled(c0, r, Color32::WHITE);
        painter.circle_stroke(c0, r, Stroke::new(1.5, Color32::from_gray(60)));
        if let (Centre::Origin, Some(cl), LorentzMap::Expmap) = (self.centre, view.hyper.clamp, view.hyper.map) {
            let rho = (cl / (2.0 * view.hyper.k.sqrt())).tanh() as f32;
            let pts: Vec<Pos2> = (0..=96).map(|i| {
                let a = i as f32 / 96.0 * std::f32::consts::TAU;
                Pos2::new(c0.x + r * rho * a.cos(), c0.y + r * rho * a.sin())
            }).collect();
            painter.extend(egui::Shape::dashed_line(&pts, Stroke::new(1.0, Color32::from_rgb(200, 140, 20)), 4.0, 3.0));
        }
        for (p, &l) in pic.real.iter().zip(&view.real_labels) {
            painter.circle_filled(to_screen(p), 2.5, class_colour(l, classes).gamma_multiply(0.35));
        }
        for (arc, c) in pic.arcs.iter().zip(0..) {
            let pts: Vec<Pos2> = arc.iter().map(to_screen).collect();
            painter.line(pts, Stroke::new(1.5, class_colour(c, classes)));
        }
        for (p, &l) in pic.syn.iter().zip(&view.syn_labels) {
            let q = to_screen(p);
            painter.circle_filled(q, 4.5, class_colour(l, classes));
            painter.circle_stroke(q, 4.5, Stroke::new(1.0, Color32::BLACK));
        }
        for (c, (a, b)) in pic.real_centroids.iter().zip(&pic.syn_centroids).enumerate() {
            let col = class_colour(c, classes);
            painter.circle_stroke(to_screen(a), 6.0, Stroke::new(2.0, col));
            let q = to_screen(b);
            painter.rect_filled(Rect::from_center_size(q, Vec2::splat(9.0)), 0.0, col);
            painter.rect_stroke(Rect::from_center_size(q, Vec2::splat(9.0)), 0.0, Stroke::new(1.0, Color32::BLACK), egui::StrokeKind::Outside);
        }
        if let Some(Hover::Syn(i)) = self.hover
            && let Some(p) = pic.syn.get(i)
        {
            painter.circle_stroke(to_screen(p), 9.0, Stroke::new(2.5, Color32::BLACK));
        }
        if let Some(Hover::Real(i)) = self.hover
            && let Some(p) = pic.real.get(i)
        {
            painter.circle_stroke(to_screen(p), 7.0, Stroke::new(2.0, Color32::BLACK));
        }
        painter.text(rect.left_top() + Vec2::new(6.0, 4.0), egui::Align2::LEFT_TOP,
            "○ real centroid  ■ synthetic centroid  ● synthetic  · real\nradius = exact geodesic distance to the centre; direction = PCA",
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
                    self.centre = Centre::Class(label);
                }
            }
        }
    }

    fn euclid_panel(&mut self, ui: &mut egui::Ui, view: &Arc<session::ViewFeatures>, iteration: usize, side: f32, classes: usize) {
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
        for (p, &l) in real.iter().zip(&view.real_labels) {
            painter.circle_filled(to_screen(p), 2.5, class_colour(l, classes).gamma_multiply(0.35));
        }
        for (i, (p, &l)) in syn.iter().zip(&view.syn_labels).enumerate() {
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

    fn plots(&mut self, ui: &mut egui::Ui, classes: usize) {
        use egui_plot::{Legend, Line, Plot, Points};
        let w = ((ui.available_width() - 30.0) / 3.0).max(150.0);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.label("training loss (fresh random net each iteration)");
                Plot::new("loss").width(w).height(180.0).show(ui, |p| {
                    p.line(Line::new("loss", self.loss_hist.clone()));
                });
            });
            ui.vertical(|ui| {
                ui.label("per-class geodesic distance d_L (view net)");
                Plot::new("dist").width(w).height(180.0).show(ui, |p| {
                    for (c, h) in self.dist_hist.iter().enumerate() {
                        p.line(Line::new(format!("class {c}"), h.clone()).color(class_colour(c, classes)));
                    }
                });
            });
            ui.vertical(|ui| {
                ui.label("per-class DM mean-feature MSE (view net), for contrast");
                Plot::new("mse").width(w).height(180.0).show(ui, |p| {
                    for (c, h) in self.mse_hist.iter().enumerate() {
                        p.line(Line::new(format!("class {c}"), h.clone()).color(class_colour(c, classes)));
                    }
                });
            });
        });
        if !self.acc_hist.is_empty() {
            ui.label("quick evaluation: test accuracy (%) ± std");
            Plot::new("acc").height(160.0).legend(Legend::default()).show(ui, |p| {
                let pts: Vec<[f64; 2]> = self.acc_hist.iter().map(|&(i, m, _)| [i as f64, m]).collect();
                p.points(Points::new("mean", pts).radius(4.0));
                for &(i, m, s) in &self.acc_hist {
                    p.line(Line::new("± std", vec![[i as f64, m - s], [i as f64, m + s]]).color(Color32::GRAY));
                }
            });
        }
    }

    fn explain(&mut self, ui: &mut egui::Ui) {
        ui.heading("What is happening");
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
        let k = v.hyper.k;
        let class = info.dataset.classes.get(label).cloned().unwrap_or_default();
        ui.strong(format!("{what} · class {label} ({class})"));
        if self.hover.is_none() {
            ui.label(egui::RichText::new("hover an image or a point to follow it").small().weak());
        }
        let vn = view::norm(feat);
        let radius = v.radius(feat);
        ui.label(format!("1. features  v = f(x) ∈ R^{}:  ‖v‖ = {vn:.3}", feat.len()));
        match v.hyper.map {
            LorentzMap::Expmap => {
                let t = v.hyper.clamp.map_or(radius, |c| radius.min(c));
                let clamped = v.hyper.clamp.is_some_and(|c| radius > c);
                ui.label(format!(
                    "2. exp map at the origin:  ‖v‖/√k = {radius:.3}{}  →  x = (√k cosh t, √k sinh t · v/‖v‖),  t = {t:.3}",
                    if clamped { " > clamp, so t is clamped" } else { "" }
                ));
            }
            LorentzMap::Projx => {
                ui.label("2. projx: x = (√(k + ‖v‖²), v)");
            }
        }
        let lorentz_norm = crate::lorentz::geoopt::inner(pt, pt);
        ui.label(format!("3. Lorentz point:  x₀ = {:.4e},  ⟨x,x⟩_L = {lorentz_norm:.4} (= −k = {:.4})", pt[0], -k));
        let to_real = crate::lorentz::geoopt::dist(pt, &v.real_centroids[label], k);
        let to_syn = crate::lorentz::geoopt::dist(pt, &v.syn_centroids[label], k);
        ui.label(format!("4. class centroids (Law):  d(x, real centroid) = {to_real:.4},  d(x, synthetic centroid) = {to_syn:.4}"));
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

/// Draw one grid texture with a caption; returns its rect and the hovered cell (class-major index).
#[allow(clippy::too_many_arguments)]
fn grid_block(ui: &mut egui::Ui, caption: &str, tex: &egui::TextureHandle, scale: f32, highlight: Option<usize>, per: usize, side: usize, count: Option<usize>) -> (Rect, Option<usize>) {
    let mut out = (Rect::NOTHING, None);
    ui.vertical(|ui| {
        ui.label(caption);
        let size = tex.size_vec2() * scale;
        let (rect, resp) = ui.allocate_exact_size(size, Sense::hover());
        ui.painter().image(tex.id(), rect, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        let cell = (side as f32 + 1.0) * scale;
        let cell_rect = |i: usize| {
            let (row, col) = (i / per, i % per);
            Rect::from_min_size(rect.min + Vec2::new(col as f32 * cell + scale * 0.5, row as f32 * cell + scale * 0.5), Vec2::splat(cell))
        };
        if let Some(i) = highlight {
            ui.painter().rect_stroke(cell_rect(i), 0.0, Stroke::new(2.0, Color32::from_rgb(255, 200, 0)), egui::StrokeKind::Outside);
        }
        if let (Some(pos), Some(n)) = (resp.hover_pos(), count) {
            let rel = pos - rect.min;
            let (col, row) = ((rel.x / cell) as usize, (rel.y / cell) as usize);
            let i = row * per + col;
            if col < per && i < n {
                out.1 = Some(i);
            }
        }
        out.0 = rect;
    });
    out
}
