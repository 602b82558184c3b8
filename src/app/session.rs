//! session: the distillation worker behind the app. It owns a `Distiller` on the app's wgpu device (eframe's,
//! or its own on software adapters), steps it off the UI's path (a thread natively, an async task on the page's
//! event loop in a browser) so the UI never waits for the GPU, and sends snapshots: the synthetic pixels, the
//! loss, the pixel-gradient norms and the features of a fixed "view" ConvNet-3 mapped onto the hyperboloid for
//! the disk, all read back in one mapping per iteration.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use web_time::Instant;

use anyhow::Result;

use super::settings::AppSettings;
use crate::data::{self, Dataset};
use crate::distill::{Distiller, Method, copy_f32};
use crate::gpu::Gpu;
use crate::view::{self, ViewFeatures};
use crate::nn::convnet::{GpuConvNet, Workspace};

/// What the UI asks of the worker.
pub enum Cmd {
    /// Open the dataset and start a fresh distillation with these settings (paused at iteration 0).
    Reset(Box<AppSettings>),
    Play,
    Pause,
    /// One iteration, then pause.
    Step,
    Quit,
}

/// What the worker tells the UI.
pub enum Msg {
    Ready(Arc<SessionInfo>),
    Snapshot(Box<Snapshot>),
    Error(String),
}

/// Fixed facts of a session, sent once after a reset.
pub struct SessionInfo {
    pub settings: AppSettings,
    pub dataset: Arc<Dataset>,
    pub adapter: String,
    /// Real images shown beside the synthetic grid and embedded for the views: `per_class` per class,
    /// class-major, normalised pixels.
    pub real: Vec<f32>,
    pub real_per_class: usize,
    /// The synthetic set at iteration 0.
    pub initial: Vec<f32>,
    /// The convolution kernels' story for this session: the autotuner's mode, how many (pass, shape) picks it knows
    /// and how many it measured while opening this session.
    pub kernels: String,
}

/// The state after one iteration.
pub struct Snapshot {
    pub iteration: usize,
    /// Synthetic pixels (normalised), class-major [classes·ipc, C, H, W].
    pub syn: Arc<Vec<f32>>,
    /// Training loss of this iteration (under its own fresh random network): total and per class.
    /// None at iteration 0.
    pub loss: Option<(f32, Vec<f32>)>,
    /// ‖∂L/∂x‖ per synthetic image (empty at iteration 0).
    pub grad_norms: Vec<f32>,
    pub view: Arc<ViewFeatures>,
    /// Seconds the iteration took on the GPU, including the wait (None at iteration 0).
    pub step_seconds: Option<f64>,
    /// Compare mode: the twin method's state after the same iteration.
    pub other: Option<Box<Snapshot>>,
}


/// The fixed network that produces the pictures (a fresh network per iteration would make them jump).
struct ViewNet {
    net: GpuConvNet,
    ws: Workspace,
    real_n: usize,
    real_labels: Vec<usize>,
}

struct Live<'g> {
    ds: Arc<Dataset>,
    distiller: Distiller<'g>,
    /// compare mode: the twin method, stepped after the first every iteration (one device: in a browser the two
    /// alternate on its one thread)
    other: Option<Distiller<'g>>,
    view: ViewNet,
    settings: AppSettings,
}

/// The worker's body: runs until `Cmd::Quit` or the UI goes away. Natively it runs on its own thread under
/// `pollster::block_on`; in a browser it is a task on the page's event loop (`spawn_local`), which is why it
/// is async: every read-back awaits the GPU instead of blocking the only thread.
pub async fn worker(gpu: Gpu, rx: Receiver<Cmd>, tx: Sender<Msg>, repaint: Box<dyn Fn()>, cache: PathBuf) {
    let send = |m: Msg| {
        let ok = tx.send(m).is_ok();
        repaint();
        ok
    };
    let mut live: Option<Live<'_>> = None;
    let mut running = false;
    loop {
        let cmd = if running && live.is_some() {
            match rx.try_recv() {
                Ok(c) => Some(c),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            match super::platform::next_cmd(&rx).await {
                Some(c) => Some(c),
                None => return,
            }
        };
        let mut step = running;
        match cmd {
            Some(Cmd::Reset(s)) => {
                running = false;
                step = false;
                live = None;
                match open(&gpu, *s, &cache).await {
                    Ok((l, info, snap)) => {
                        live = Some(l);
                        send(Msg::Ready(Arc::new(info)));
                        send(Msg::Snapshot(Box::new(snap)));
                    }
                    Err(e) => {
                        send(Msg::Error(format!("{e:#}")));
                    }
                }
            }
            Some(Cmd::Play) => {
                running = true;
                step = true;
            }
            Some(Cmd::Pause) => {
                running = false;
                step = false;
            }
            Some(Cmd::Step) => {
                running = false;
                step = true;
            }
            Some(Cmd::Quit) => return,
            None => {}
        }
        if step && let Some(l) = live.as_mut() {
            match iterate(&gpu, l).await {
                Ok(snap) => {
                    if !send(Msg::Snapshot(Box::new(snap))) {
                        return;
                    }
                }
                Err(e) => {
                    running = false;
                    send(Msg::Error(format!("{e:#}")));
                }
            }
            // a browser draws only between tasks: give it a turn after every iteration
            super::platform::between_iterations().await;
        }
    }
}

async fn open<'g>(gpu: &'g Gpu, settings: AppSettings, cache: &std::path::Path) -> Result<(Live<'g>, SessionInfo, Snapshot)> {
    settings.validate()?;
    let ds = Arc::new(data::open(&settings.dataset, cache)?);
    let (real, real_labels, per) = view::shown_real(&ds, settings.view_real_per_class, settings.distill.seed);
    let build = || -> Result<Live<'g>> {
        let distiller = Distiller::new(gpu, &ds, settings.distill.clone())?;
        let other = if settings.compare { Some(Distiller::new(gpu, &ds, twin_config(&settings.distill))?) } else { None };
        let m = ds.classes.len() * settings.distill.ipc;
        let net = GpuConvNet::new(gpu, &view::view_net(&ds, settings.distill.width, settings.distill.seed)?)?;
        let ws = net.workspace(gpu, real_labels.len() + m)?;
        gpu.write(&ws.x, &real);
        let view = ViewNet { net, ws, real_n: real_labels.len(), real_labels: real_labels.clone() };
        Ok(Live { ds: ds.clone(), distiller, other, view, settings: settings.clone() })
    };
    let mut live = build()?;
    // In a browser the networks could not wait for the autotuner while they were made (they run the rule for shapes
    // not measured yet): measure those now, asynchronously, and make them again with the picks. Natively the shapes
    // were measured as they were made, and nothing is pending.
    let measured = crate::nn::tune::tune_pending(gpu).await?;
    if measured > 0 {
        super::platform::kernel_table_changed(gpu);
        live = build()?;
    }
    let kernels = format!("autotune {}: {} picks known, {measured} measured now", format!("{:?}", gpu.kernels.mode()).to_lowercase(),
        gpu.kernels.table().len());
    let (view, initial, _) = read_state(gpu, &live, &live.distiller, false).await?;
    let other = match &live.other {
        Some(d) => {
            let (view, syn, _) = read_state(gpu, &live, d, false).await?;
            Some(Box::new(Snapshot { iteration: 0, syn: Arc::new(syn), loss: None, grad_norms: vec![], view, step_seconds: None, other: None }))
        }
        None => None,
    };
    let info = SessionInfo {
        settings,
        dataset: ds,
        adapter: gpu.describe(),
        real,
        real_per_class: per,
        initial: initial.clone(),
        kernels,
    };
    let snap = Snapshot { iteration: 0, syn: Arc::new(initial), loss: None, grad_norms: vec![], view, step_seconds: None, other };
    live.settings.distill.iterations = 0;
    Ok((live, info, snap))
}

async fn iterate(gpu: &Gpu, l: &mut Live<'_>) -> Result<Snapshot> {
    let mut snap = step_one(gpu, l, false).await?;
    if l.other.is_some() {
        snap.other = Some(Box::new(step_one(gpu, l, true).await?));
    }
    // gradient passes first used in this iteration, which a browser could only note for measuring: measured now,
    // between iterations; this session's networks keep the rule's kernels for them, the next session runs the picks
    if crate::nn::tune::tune_pending(gpu).await? > 0 {
        super::platform::kernel_table_changed(gpu);
    }
    Ok(snap)
}

/// One iteration of the first distiller (or, with `other`, of the twin) and its snapshot.
async fn step_one(gpu: &Gpu, l: &mut Live<'_>, other: bool) -> Result<Snapshot> {
    let t = Instant::now();
    let ds = l.ds.clone();
    match (other, l.other.as_mut()) {
        (true, Some(d)) => d.step(&ds)?,
        _ => l.distiller.step(&ds)?,
    }
    let d = match (other, &l.other) {
        (true, Some(d)) => d,
        _ => &l.distiller,
    };
    let (view, syn, reads) = read_state(gpu, l, d, true).await?;
    let step_seconds = t.elapsed().as_secs_f64();
    let Some([loss, grad, health]) = reads else { anyhow::bail!("internal: the loss was not read back") };
    if let Some(at) = Distiller::diverged_at(&health) {
        let s = &l.settings.distill;
        anyhow::bail!(
            "the distillation ({}) diverged at iteration {at}: a synthetic pixel became NaN or infinite; lower lr (images, now {}) or λ (now {}) and reset",
            d.cfg().method.name(), s.lr_img, s.lambda
        );
    }
    let loss = d.loss_from(&loss);
    let grad_norms = d.grad_norms_from(&grad);
    Ok(Snapshot { iteration: d.iteration(), syn: Arc::new(syn), loss: Some(loss), grad_norms, view, step_seconds: Some(step_seconds), other: None })
}

/// Embed the shown real images and the current synthetic set with the view network and map them to the
/// hyperboloid; read back the features and the synthetic pixels, and with `loss` also the loss, the pixel
/// gradient and the divergence flag, all in one read-back.
async fn read_state(gpu: &Gpu, l: &Live<'_>, d: &Distiller<'_>, loss: bool) -> Result<(Arc<ViewFeatures>, Vec<f32>, Option<[Vec<f32>; 3]>)> {
    let v = &l.view;
    let img = l.ds.image_len();
    let m = d.synthetic_labels().len();
    let mut enc = gpu.encoder();
    copy_f32(&mut enc, d.syn(), 0, &v.ws.x, v.real_n * img, m * img);
    v.net.forward_only(gpu, &mut enc, &v.ws, false);
    gpu.submit(enc);
    let dim = v.net.cfg.embed_dim();
    let mut parts = vec![(&v.ws.embed, (v.real_n + m) * dim), (d.syn(), d.syn_len())];
    if loss {
        parts.extend([d.loss_source(), (d.pixel_grad(), d.syn_len()), d.health_source()]);
    }
    let mut reads = gpu.read_many_async(&parts).await?.into_iter();
    let mut next = || reads.next().unwrap_or_default();
    let (feats, syn) = (next(), next());
    let rest = if loss { Some([next(), next(), next()]) } else { None };
    let syn_labels = d.synthetic_labels().iter().map(|&c| c as usize).collect();
    let view = Arc::new(ViewFeatures::from_features(l.settings.distill.hdd(), l.ds.classes.len(), &feats, dim, v.real_labels.clone(), syn_labels));
    Ok((view, syn, rest))
}

/// Compare mode's second configuration: the twin method with everything else the same (seed, IPC, width, batch,
/// augmentation, IDM's queue), except what the method itself defines — HDD's k and λ when the first has none, and
/// the step size where the first runs at its method's default (IDM: 0.2, IDM+HDD: 1 at IPC 10) — as choosing the
/// method in the controls would set them.
pub fn twin_config(first: &crate::distill::DistillConfig) -> crate::distill::DistillConfig {
    let mut twin = first.clone();
    twin.method = first.method.twin();
    let mut defaults = twin.clone();
    defaults.apply_method_defaults();
    let mut first_defaults = first.clone();
    first_defaults.apply_method_defaults();
    if first.lr_img == first_defaults.lr_img {
        twin.lr_img = defaults.lr_img;
    }
    if !first.method.hdd() {
        (twin.k, twin.lambda) = (defaults.k, defaults.lambda);
    }
    twin
}

/// Whether the method shows geodesic distances as its loss (HDD) or DM's squared mean difference.
pub fn loss_name(method: Method) -> &'static str {
    match method {
        Method::Dm => "DM: Σ (mean real − mean syn)²",
        Method::DmHdd => "HDD: λ · d_L(real centroid, syn centroid)",
        Method::Idm => "IDM matching: Σ (mean real − mean syn)² (CE term not shown)",
        Method::IdmHdd => "IDM+HDD matching: λ · d_L (CE term not shown)",
        Method::Dance => "DANCE matching: mean (mean real − mean syn)² (calibration CE not shown)",
        Method::DanceHdd => "DANCE+HDD matching: λ · d_L (calibration CE not shown)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::DistillConfig;

    #[test]
    fn the_twin_differs_only_in_what_its_method_defines() {
        // DM+HDD at the authors' settings against DM: the same everything, DM's (unused) k and λ
        let first = DistillConfig { method: Method::DmHdd, seed: 7, ipc: 10, ..DistillConfig::default() };
        let twin = twin_config(&first);
        assert_eq!(twin.method, Method::Dm);
        assert_eq!(DistillConfig { method: Method::DmHdd, ..twin.clone() }, first);
        // IDM+HDD at its default step (1 at IPC 10) against IDM at IDM's (0.2); a step the user chose stays
        let mut idm_hdd = DistillConfig { method: Method::IdmHdd, ipc: 10, ..DistillConfig::default() };
        idm_hdd.apply_method_defaults();
        let twin = twin_config(&idm_hdd);
        assert_eq!((twin.method, twin.lr_img, twin.idm.clone()), (Method::Idm, 0.2, idm_hdd.idm.clone()));
        idm_hdd.lr_img = 0.7;
        assert_eq!(twin_config(&idm_hdd).lr_img, 0.7);
        // DM against DM+HDD: the HDD side gets the method's k and λ
        let dm = DistillConfig { method: Method::Dm, k: 5.0, lambda: 1.0, ..DistillConfig::default() };
        let twin = twin_config(&dm);
        let d = DistillConfig::default();
        assert_eq!((twin.method, twin.k, twin.lambda), (Method::DmHdd, d.k, d.lambda));
    }
}
