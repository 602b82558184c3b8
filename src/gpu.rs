//! gpu: adapter and device selection, the pipeline cache, buffer helpers, dispatch and read-back.
//!
//! Everything that talks to wgpu directly lives here; `nn` and the rest only ask for kernels by
//! (shader, entry point, constants) and hand over buffers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use wgpu::util::DeviceExt;

use crate::shaders::Shader;

/// Most buffers a kernel binds (norm backward binds 6); the bind-group cache keys on this many slots.
const MAX_BINDINGS: usize = 8;

/// Bind groups kept from one iteration to the next by an owner whose buffers outlive them (the distiller).
/// While a cache is active on this thread (`activate`), `Gpu::dispatch` reuses the bind group of an identical
/// launch (same pipeline, same buffers) instead of creating one, so a steady-state iteration creates no GPU
/// objects at all. The cache holds its buffers alive: it belongs to the owner of those buffers and is dropped
/// with it. Keys compare wgpu handles by identity and live on the stack (no allocation per dispatch).
#[derive(Default)]
pub struct BindGroupCache(Mutex<HashMap<LaunchKey, wgpu::BindGroup>>);

/// A launch's pipeline and its bound buffers, in binding order.
type LaunchKey = (wgpu::ComputePipeline, [Option<wgpu::Buffer>; MAX_BINDINGS]);

/// GPU time of every dispatch recorded on this thread while active (`activate`): a timestamp at the start and
/// the end of each compute pass, for `bench --parts breakdown`. Made by `Gpu::profiler` where the device has
/// TIMESTAMP_QUERY; dispatches past `capacity` go untimed.
pub struct KernelProfiler {
    query_set: wgpu::QuerySet,
    // read by `Gpu::read_profile`, which blocks and so is native only
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    resolve: wgpu::Buffer,
    capacity: u32,
    names: Mutex<Vec<String>>,
}

type ActiveSlot<T> = std::thread::LocalKey<RefCell<Option<Arc<T>>>>;

thread_local! {
    static ACTIVE_CACHE: RefCell<Option<Arc<BindGroupCache>>> = const { RefCell::new(None) };
    static ACTIVE_PROFILER: RefCell<Option<Arc<KernelProfiler>>> = const { RefCell::new(None) };
}

/// While alive, this thread's dispatches go through the activated cache or profiler; dropping it restores
/// whatever was active before.
pub struct Scope<T: 'static> {
    slot: &'static ActiveSlot<T>,
    previous: Option<Arc<T>>,
}

fn activate<T>(slot: &'static ActiveSlot<T>, item: &Arc<T>) -> Scope<T> {
    Scope { slot, previous: slot.with(|c| c.borrow_mut().replace(item.clone())) }
}

fn active<T>(slot: &'static ActiveSlot<T>) -> Option<Arc<T>> {
    slot.with(|c| c.borrow().clone())
}

impl<T> Drop for Scope<T> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        self.slot.with(|c| *c.borrow_mut() = previous);
    }
}

impl BindGroupCache {
    pub fn activate(self: &Arc<Self>) -> Scope<BindGroupCache> {
        activate(&ACTIVE_CACHE, self)
    }
}

impl KernelProfiler {
    pub fn activate(self: &Arc<Self>) -> Scope<KernelProfiler> {
        activate(&ACTIVE_PROFILER, self)
    }
}

/// HYPERDISTILL_AUTOTUNE: whether kernels with several forms are picked by timing them on this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autotune {
    /// The hand-made rule (`nn::ops::*::of`): measured on CPU adapters, the scalar kernels elsewhere.
    Off,
    /// Each (operation, shape) timed the first time it is needed, then remembered in the cache directory.
    On,
    /// As `On`, but every shape is timed again once in this process, replacing what the cache held.
    Refresh,
}

impl Autotune {
    /// `off`, `on` or `refresh` (case-insensitive); an empty value is the default.
    pub fn parse(v: &str) -> Result<Option<Autotune>, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "off" | "0" | "false" => Ok(Some(Autotune::Off)),
            "on" | "1" | "true" => Ok(Some(Autotune::On)),
            "refresh" => Ok(Some(Autotune::Refresh)),
            _ => Err(format!("HYPERDISTILL_AUTOTUNE={v}: expected off, on or refresh")),
        }
    }

    /// The default: on for GPUs, off for CPU adapters (lavapipe, SwiftShader, WARP), whose rule was made by
    /// measurement there and where timing every candidate costs seconds to minutes.
    pub fn default_for(device_type: wgpu::DeviceType) -> Autotune {
        if device_type == wgpu::DeviceType::Cpu { Autotune::Off } else { Autotune::On }
    }
}

/// One (operation, shape)'s measured pick: the fastest candidate, how long it took, and every candidate's time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tuned {
    pub kernel: String,
    /// median milliseconds of the pick
    pub ms: f64,
    /// "gpu timestamps" or "wall clock"
    pub timing: String,
    /// each candidate's median milliseconds (a candidate stopped early as hopeless: its fastest run)
    pub candidates: std::collections::BTreeMap<String, f64>,
    /// candidates not timed: the pass and shape's time budget ran out first
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// The file the picks persist in: the adapter they were measured on, the build, and the picks by key.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct TunedFile {
    adapter: String,
    version: String,
    picks: std::collections::BTreeMap<String, Tuned>,
}

/// Which kernel runs each (operation, shape) that has several forms, keyed by `nn::tune`'s key strings: pinned
/// (a resumed run's recorded kernels), measured (the autotuner, kept in a file per adapter and build), or the rule.
/// What this process ran is kept too, so that checkpoints and outputs record it.
pub struct KernelPicks {
    mode: Mutex<Autotune>,
    file: Mutex<Option<std::path::PathBuf>>,
    tuned: Mutex<std::collections::BTreeMap<String, Tuned>>,
    /// keys timed again in this process under `Autotune::Refresh`
    refreshed: Mutex<std::collections::BTreeSet<String>>,
    pinned: Mutex<std::collections::BTreeMap<String, String>>,
    used: Mutex<std::collections::BTreeMap<String, String>>,
    /// wall seconds this process has spent measuring candidates (pipeline compilation included)
    spent: Mutex<f64>,
    /// keys a browser's workspace wanted measured (it cannot wait for the GPU then): `nn::tune::tune_pending`
    pending: Mutex<std::collections::BTreeSet<String>>,
    /// seconds of measuring this process may spend (natively; `TUNE_BUDGET_S`); keys met after that run the rule and
    /// are measured by a later run
    budget: Mutex<f64>,
    /// keys that ran the rule because the budget was spent
    deferred: Mutex<std::collections::BTreeSet<String>>,
}

/// Seconds of measuring one process may spend on new shapes by default under `Autotune::On`
/// (HYPERDISTILL_AUTOTUNE_BUDGET): the first run on a device costs at most about this much; shapes past it run the rule
/// this time and are measured by later runs. `Autotune::Refresh` measures every shape it meets.
pub const TUNE_BUDGET_S: f64 = 10.0;

impl KernelPicks {
    fn new(mode: Autotune, file: Option<std::path::PathBuf>) -> KernelPicks {
        let picks = KernelPicks {
            mode: Mutex::new(mode),
            file: Mutex::new(None),
            tuned: Mutex::default(),
            refreshed: Mutex::default(),
            pinned: Mutex::default(),
            used: Mutex::default(),
            spent: Mutex::new(0.0),
            pending: Mutex::default(),
            budget: Mutex::new(TUNE_BUDGET_S),
            deferred: Mutex::default(),
        };
        picks.set_file(file);
        picks
    }

    pub fn mode(&self) -> Autotune {
        *self.mode.lock().unwrap()
    }

    /// Change the mode (the bench compares the rule with the tuned picks; tests tune on CPU adapters).
    pub fn set_mode(&self, mode: Autotune) {
        if mode == Autotune::Refresh {
            self.refreshed.lock().unwrap().clear();
        }
        *self.mode.lock().unwrap() = mode;
    }

    /// Where measured picks persist (None: only in this process's memory); what the file holds is loaded now. A file
    /// that does not parse is ignored (it is rewritten at the next pick).
    pub fn set_file(&self, file: Option<std::path::PathBuf>) {
        let loaded = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| toml::from_str::<TunedFile>(&t).map_err(|e| log::warn!("ignoring the autotuner's table: {e}")).ok())
            .map(|t| t.picks)
            .unwrap_or_default();
        *self.tuned.lock().unwrap() = loaded;
        *self.file.lock().unwrap() = file;
    }

    pub fn file(&self) -> Option<std::path::PathBuf> {
        self.file.lock().unwrap().clone()
    }

    /// A measured pick for `key`, unless `Refresh` asks for it to be measured again in this process.
    pub fn tuned(&self, key: &str) -> Option<Tuned> {
        if self.mode() == Autotune::Refresh && !self.refreshed.lock().unwrap().contains(key) {
            return None;
        }
        self.tuned.lock().unwrap().get(key).cloned()
    }

    /// Every measured pick known (the file's and this process's), by key.
    pub fn table(&self) -> std::collections::BTreeMap<String, Tuned> {
        self.tuned.lock().unwrap().clone()
    }

    /// Remember a measured pick and write the table to its file (temporary file, then rename; re-read first so that
    /// processes tuning side by side lose nothing but a race). A file that cannot be written is a warning: the pick
    /// still holds for this process.
    pub fn store(&self, key: &str, t: Tuned, adapter: &str) {
        if self.mode() == Autotune::Refresh {
            self.refreshed.lock().unwrap().insert(key.to_string());
        }
        self.tuned.lock().unwrap().insert(key.to_string(), t);
        let Some(path) = self.file() else { return };
        let mut on_disk = std::fs::read_to_string(&path).ok().and_then(|t| toml::from_str::<TunedFile>(&t).ok()).unwrap_or_default();
        on_disk.adapter = adapter.to_string();
        on_disk.version = env!("CARGO_PKG_VERSION").to_string();
        on_disk.picks.extend(self.tuned.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())));
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let text = toml::to_string(&on_disk).map_err(std::io::Error::other)?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            log::warn!("could not save the autotuner's picks to {}: {e}", path.display());
        }
    }

    /// Run these kernels for these keys whatever the mode (a resumed run's recorded kernels, for bit-exact resume).
    pub fn pin(&self, kernels: &std::collections::BTreeMap<String, String>) {
        self.pinned.lock().unwrap().extend(kernels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    pub fn pinned(&self, key: &str) -> Option<String> {
        self.pinned.lock().unwrap().get(key).cloned()
    }

    /// Note a key to measure later (a browser's workspace, which cannot wait for the GPU).
    pub fn note_pending(&self, key: &str) {
        self.pending.lock().unwrap().insert(key.to_string());
    }

    /// The keys noted for measuring, and none left.
    pub fn take_pending(&self) -> Vec<String> {
        std::mem::take(&mut *self.pending.lock().unwrap()).into_iter().collect()
    }

    /// The measured picks as the table file's text (the browser keeps it in the page's storage).
    pub fn to_text(&self, adapter: &str) -> String {
        let t = TunedFile { adapter: adapter.to_string(), version: env!("CARGO_PKG_VERSION").to_string(), picks: self.table() };
        toml::to_string(&t).unwrap_or_default()
    }

    /// Add the picks of a table file's text (from the page's storage); text that does not parse is ignored.
    pub fn load_text(&self, text: &str) {
        match toml::from_str::<TunedFile>(text) {
            Ok(t) => self.tuned.lock().unwrap().extend(t.picks),
            Err(e) => log::warn!("ignoring a stored autotuner table: {e}"),
        }
    }

    /// Add `seconds` to the time spent tuning.
    pub fn note_spent(&self, seconds: f64) {
        *self.spent.lock().unwrap() += seconds;
    }

    /// Wall seconds this process has spent measuring candidates.
    pub fn spent(&self) -> f64 {
        *self.spent.lock().unwrap()
    }

    /// Seconds of measuring this process may spend (see `TUNE_BUDGET_S`).
    pub fn budget(&self) -> f64 {
        *self.budget.lock().unwrap()
    }

    pub fn set_budget(&self, seconds: f64) {
        *self.budget.lock().unwrap() = seconds;
    }

    /// `key` ran the rule because the budget was spent.
    pub fn note_deferred(&self, key: &str) {
        self.deferred.lock().unwrap().insert(key.to_string());
    }

    /// Keys left for a later run because the budget was spent.
    pub fn deferred(&self) -> std::collections::BTreeSet<String> {
        self.deferred.lock().unwrap().clone()
    }

    /// Note that `key` ran `kernel` in this process.
    pub fn note_used(&self, key: &str, kernel: &str) {
        self.used.lock().unwrap().insert(key.to_string(), kernel.to_string());
    }

    /// Every (key, kernel) this process has run, for checkpoints and outputs.
    pub fn used(&self) -> std::collections::BTreeMap<String, String> {
        self.used.lock().unwrap().clone()
    }
}

/// Threads per workgroup of every kernel (`@workgroup_size(64)` in the WGSL files).
pub const WORKGROUP: u32 = 64;

/// What to tell a user whose machine has no usable adapter.
pub const INSTALL_HINT: &str = "hyperdistill needs a GPU driver that wgpu can use: Vulkan (Linux, Windows), \
Metal (macOS) or DX12 (Windows). On a machine without a GPU, install Mesa's software Vulkan driver \
(lavapipe); on Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1`. \
WGPU_BACKEND=vulkan|metal|dx12|gl picks a backend.";

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found (backends tried: {backends}; {detail}). {INSTALL_HINT}")]
    NoAdapter { backends: String, detail: String },
    #[error("could not open a device on adapter '{adapter}': {detail}")]
    Device { adapter: String, detail: String },
    #[error("buffer '{label}' needs {bytes} bytes but this adapter binds at most {limit} bytes per storage buffer; use a smaller batch")]
    TooLarge { label: String, bytes: u64, limit: u64 },
    #[error("reading a buffer back from the GPU failed: {0}")]
    Readback(String),
    #[error("no adapter matches '{spec}' (an index or a part of the name); there are: {available}")]
    NoSuchAdapter { spec: String, available: String },
}

/// Key of the pipeline cache: shader name, entry point, and the override constants (as f64 bits).
#[derive(Clone, PartialEq, Eq, Hash)]
struct PipelineKey {
    shader: &'static str,
    entry: &'static str,
    constants: Vec<(&'static str, u64)>,
}

/// Hardware-independent counts of what the engine asked of wgpu (the bench reports them per iteration).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Counters {
    pub dispatches: u64,
    /// queue submissions (each read-back is one as well)
    pub submits: u64,
    /// GPU → host copies (each waits for the GPU)
    pub readbacks: u64,
    /// host → GPU writes and their bytes
    pub writes: u64,
    pub write_bytes: u64,
    /// GPU objects created: buffers (incl. read-back staging) and bind groups
    pub buffers_created: u64,
    /// bytes of those buffers (wgpu frees a buffer when its last handle drops; this counts creations only)
    pub buffer_bytes_created: u64,
    pub bind_groups_created: u64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, o: Counters) -> Counters {
        Counters {
            dispatches: self.dispatches - o.dispatches,
            submits: self.submits - o.submits,
            readbacks: self.readbacks - o.readbacks,
            writes: self.writes - o.writes,
            write_bytes: self.write_bytes - o.write_bytes,
            buffers_created: self.buffers_created - o.buffers_created,
            buffer_bytes_created: self.buffer_bytes_created - o.buffer_bytes_created,
            bind_groups_created: self.bind_groups_created - o.bind_groups_created,
        }
    }
}

impl Counters {
    /// Each count divided by `n` (per iteration, from a total over `n` iterations).
    pub fn per(self, n: u64) -> Counters {
        let n = n.max(1);
        Counters {
            dispatches: self.dispatches / n,
            submits: self.submits / n,
            readbacks: self.readbacks / n,
            writes: self.writes / n,
            write_bytes: self.write_bytes / n,
            buffers_created: self.buffers_created / n,
            buffer_bytes_created: self.buffer_bytes_created / n,
            bind_groups_created: self.bind_groups_created / n,
        }
    }
}

#[derive(Default)]
struct AtomicCounters([AtomicU64; 8]);

impl AtomicCounters {
    fn add(&self, i: usize, v: u64) {
        self.0[i].fetch_add(v, Relaxed);
    }
    fn get(&self) -> Counters {
        let g = |i: usize| self.0[i].load(Relaxed);
        Counters {
            dispatches: g(0),
            submits: g(1),
            readbacks: g(2),
            writes: g(3),
            write_bytes: g(4),
            buffers_created: g(5),
            buffer_bytes_created: g(7),
            bind_groups_created: g(6),
        }
    }
}
const DISPATCHES: usize = 0;
const SUBMITS: usize = 1;
const READBACKS: usize = 2;
const WRITES: usize = 3;
const WRITE_BYTES: usize = 4;
const BUFFERS: usize = 5;
const BIND_GROUPS: usize = 6;
const BUFFER_BYTES: usize = 7;

/// One opened adapter + device, with a cache of compiled shader modules and pipelines.
pub struct Gpu {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    counters: AtomicCounters,
    /// wgpu's runtime bounds checks in our shaders (on unless HYPERDISTILL_SHADER_BOUNDS_CHECKS=off, see `pipeline`)
    pub bounds_checks: bool,
    /// The subgroup size the subgroup kernels are built for: Some where the device has `Features::SUBGROUP` and
    /// the adapter's subgroup size is fixed (minimum = maximum, ≤ 128: NVIDIA 32, lavapipe 8), so that a workgroup
    /// of that size is one subgroup; None elsewhere, and the kernels without subgroups run.
    /// HYPERDISTILL_SUBGROUPS=off makes it None (to compare against the kernels without subgroups).
    pub subgroup_size: Option<u32>,
    /// The convolution kernels picked per shape: measured here (HYPERDISTILL_AUTOTUNE), pinned by a resume, or the
    /// rule (`nn::tune`).
    pub kernels: KernelPicks,
    /// 16 zero bytes: bound where a kernel declares a binding that a pipeline constant leaves unread (`spare_binding`)
    spare: std::sync::OnceLock<wgpu::Buffer>,
}

/// The autotuner's table file for this adapter and build: `<cache>/autotune/<table_id>.toml`.
#[cfg(not(target_arch = "wasm32"))]
pub fn autotune_file(info: &wgpu::AdapterInfo) -> std::path::PathBuf {
    crate::data::fetch::default_cache_dir().join("autotune").join(format!("{}.toml", table_id(info)))
}

/// `<name>-<hash>`: names the autotuner's table of this adapter and build, the hash over the adapter, its driver, the
/// version and the convolution shaders (a new driver or kernel means measuring again).
pub fn table_id(info: &wgpu::AdapterInfo) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [
        format!("{:?}", info.backend),
        info.name.clone(),
        format!("{:x}:{:x}", info.vendor, info.device),
        info.driver.clone(),
        info.driver_info.clone(),
        env!("CARGO_PKG_VERSION").to_string(),
    ];
    let shaders = [&crate::shaders::CONV_FORWARD, &crate::shaders::CONV_INPUT, &crate::shaders::CONV_WEIGHT, &crate::shaders::CONV_GEMM];
    for bytes in parts.iter().map(|p| p.as_bytes()).chain(shaders.iter().map(|s| s.source.as_bytes())) {
        for &b in bytes.iter().chain([0u8].iter()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3); // FNV-1a
        }
    }
    let slug: String = info.name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(40).collect();
    format!("{slug}-{h:016x}")
}

impl Gpu {
    /// Open the adapter HYPERDISTILL_ADAPTER names (see `select`), else the preferred one: high-performance unless
    /// WGPU_POWER_PREF says otherwise, backends from WGPU_BACKEND when set, else every backend compiled in.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Gpu, GpuError> {
        Self::select(None)
    }

    /// Every adapter wgpu finds (WGPU_BACKEND's backends, else all), in the order `--adapter INDEX` counts them.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn adapters() -> Vec<wgpu::Adapter> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = desc.backends;
        pollster::block_on(wgpu::Instance::new(desc).enumerate_adapters(backends))
    }

    /// Open the adapter `spec` names — an index into `adapters()`, or a case-insensitive part of its name (the
    /// first that matches) — or, without one, the adapter HYPERDISTILL_ADAPTER names, else the preferred one. Several
    /// processes on one multi-GPU node (Slurm's tasks, say) each take their own this way.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn select(spec: Option<&str>) -> Result<Gpu, GpuError> {
        let env = std::env::var("HYPERDISTILL_ADAPTER").ok().filter(|s| !s.trim().is_empty());
        let Some(spec) = spec.map(str::to_string).or(env) else {
            return pollster::block_on(Self::open(wgpu::InstanceDescriptor::new_without_display_handle_from_env()));
        };
        let adapters = Self::adapters();
        let want = spec.trim().to_lowercase();
        let pick = match want.parse::<usize>() {
            Ok(i) => adapters.into_iter().nth(i),
            Err(_) => adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&want)),
        };
        match pick {
            Some(a) => pollster::block_on(Self::from_adapter(a)),
            None => {
                let available = Self::adapters().iter().enumerate().map(|(i, a)| format!("{i}: {}", a.get_info().name)).collect::<Vec<_>>().join(", ");
                Err(GpuError::NoSuchAdapter { spec, available: if available.is_empty() { "none".into() } else { available } })
            }
        }
    }

    /// Open an adapter on exactly these backends (tests use `Backends::empty()` to see the no-adapter path).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_backends(backends: wgpu::Backends) -> Result<Gpu, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        pollster::block_on(Self::open(desc))
    }

    pub async fn open(desc: wgpu::InstanceDescriptor) -> Result<Gpu, GpuError> {
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let power_preference =
            wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| GpuError::NoAdapter {
                backends: format!("{backends:?}"),
                detail: e.to_string(),
            })?;
        Self::from_adapter(adapter).await
    }

    /// Open a device on `adapter`, asking for the adapter's real limits: wgpu's defaults cap storage
    /// bindings at 128 MiB and workgroup storage at 16 KiB, which real networks exceed.
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu, GpuError> {
        let name = adapter.get_info().name;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("hyperdistill"),
                // timestamps only feed `bench --parts breakdown`; subgroups pick faster kernels (norm_sg.wgsl);
                // each asked for where the adapter has it
                required_features: adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP),
                required_limits: adapter.limits(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::Device { adapter: name, detail: e.to_string() })?;
        // the device's limits are the ones just asked for
        Ok(Gpu::from_device(adapter, device, queue))
    }

    /// Wrap a device someone else opened (the app shares eframe's device so compute results can be drawn
    /// without leaving the GPU). Its limits are the device's own, whatever it was opened with.
    pub fn from_device(adapter: wgpu::Adapter, device: wgpu::Device, queue: wgpu::Queue) -> Gpu {
        let info = adapter.get_info();
        let off = matches!(std::env::var("HYPERDISTILL_SUBGROUPS").as_deref(), Ok("off" | "0" | "false"));
        let subgroup_size = (!off
            && device.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == info.subgroup_max_size
            && (1..=128).contains(&info.subgroup_min_size))
        .then_some(info.subgroup_min_size);
        // the browser has no blocking read-back to time candidates with: the rule there (see nn::tune)
        #[cfg(target_arch = "wasm32")]
        let mode = Autotune::Off;
        #[cfg(not(target_arch = "wasm32"))]
        let mode = match Autotune::parse(&std::env::var("HYPERDISTILL_AUTOTUNE").unwrap_or_default()) {
            Ok(m) => m.unwrap_or(Autotune::default_for(info.device_type)),
            Err(e) => {
                let d = Autotune::default_for(info.device_type);
                eprintln!("warning: {e}; using the default for this adapter ({d:?})");
                d
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        let file = Some(autotune_file(&info));
        #[cfg(target_arch = "wasm32")]
        let file = None;
        let kernels = KernelPicks::new(mode, file);
        if let Ok(b) = std::env::var("HYPERDISTILL_AUTOTUNE_BUDGET") {
            match b.trim().parse::<f64>() {
                Ok(s) if s >= 0.0 => kernels.set_budget(s),
                _ => eprintln!("warning: HYPERDISTILL_AUTOTUNE_BUDGET must be a number of seconds (≥ 0, or inf), not '{b}'; using {TUNE_BUDGET_S}"),
            }
        }
        Gpu {
            kernels,
            info,
            subgroup_size,
            limits: device.limits(),
            adapter,
            device,
            queue,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            counters: AtomicCounters::default(),
            spare: std::sync::OnceLock::new(),
            bounds_checks: !matches!(std::env::var("HYPERDISTILL_SHADER_BOUNDS_CHECKS").as_deref(), Ok("off" | "0" | "false")),
        }
    }

    /// `b` where it can be bound as an array of vec4 (≥ 16 bytes), else a 16-byte buffer of zeros made once: for a
    /// binding the kernel reads only under a pipeline constant the caller has set off for such a buffer.
    pub fn vec4_binding<'a>(&'a self, b: &'a wgpu::Buffer) -> &'a wgpu::Buffer {
        if b.size() >= 16 {
            return b;
        }
        self.spare.get_or_init(|| {
            self.note_buffer_created(16);
            self.device.create_buffer(&wgpu::BufferDescriptor { label: Some("spare"), size: 16, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false })
        })
    }

    /// What this `Gpu` has asked of wgpu so far (see `Counters`).
    pub fn counters(&self) -> Counters {
        self.counters.get()
    }

    /// (bytes in live allocations, bytes reserved in memory blocks) from wgpu's allocator, where the backend
    /// keeps one (Vulkan, DX12 natively; not WebGPU in a browser).
    pub fn memory_in_use(&self) -> Option<(u64, u64)> {
        self.device.generate_allocator_report().map(|r| (r.total_allocated_bytes, r.total_reserved_bytes))
    }

    /// Count a buffer created outside the helpers below.
    pub fn note_buffer_created(&self, bytes: u64) {
        self.counters.add(BUFFERS, 1);
        self.counters.add(BUFFER_BYTES, bytes);
    }

    /// Largest storage buffer one binding may hold on this device, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        (self.limits.max_storage_buffer_binding_size as u64).min(self.limits.max_buffer_size)
    }

    /// One line naming the adapter, for logs and output metadata.
    pub fn describe(&self) -> String {
        let i = &self.info;
        // browsers hide the adapter's name and driver; say so rather than print blanks
        let name = if i.name.is_empty() { "unnamed adapter" } else { &i.name };
        let driver = format!("{} {}", i.driver, i.driver_info);
        let driver = if driver.trim().is_empty() { "not disclosed".to_string() } else { driver.trim().to_string() };
        format!("{name} ({:?}, {:?}, driver {driver})", i.backend, i.device_type)
    }

    /// Compiled pipeline for (shader, entry, constants); built once, then served from the cache.
    pub fn pipeline(&self, shader: &Shader, entry: &'static str, constants: &[(&'static str, f64)]) -> wgpu::ComputePipeline {
        let key = PipelineKey {
            shader: shader.name,
            entry,
            constants: constants.iter().map(|&(k, v)| (k, v.to_bits())).collect(),
        };
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return p.clone();
        }
        let module = {
            let mut modules = self.modules.lock().unwrap();
            modules
                .entry(shader.name)
                .or_insert_with(|| {
                    let desc = wgpu::ShaderModuleDescriptor { label: Some(shader.name), source: wgpu::ShaderSource::Wgsl(shader.source.into()) };
                    if self.bounds_checks {
                        self.device.create_shader_module(desc)
                    } else {
                        // SAFETY (opt-in, for speed: lavapipe runs the convolutions 20–50 % faster without the clamps,
                        // benches/NOTES.md): every kernel returns once its index passes its own total and computes
                        // its addresses from the shape constants it was built with; the tests compare every kernel
                        // with the reference on NaN-poisoned outputs. A kernel bug would then read or write out of
                        // bounds instead of being clamped, which is why the default keeps the checks.
                        unsafe { self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
                    }
                })
                .clone()
        };
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, zero_initialize_workgroup_memory: false },
            cache: None,
        });
        self.pipelines.lock().unwrap().insert(key, pipeline.clone());
        pipeline
    }

    /// Number of pipelines built so far (bench and tests report it).
    pub fn pipeline_count(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }

    /// Record one kernel launch of `invocations` threads into `enc`. `buffers[i]` is bound at
    /// `@group(0) @binding(i)`. The grid is split over x and y so that no dimension exceeds the
    /// 65535-workgroup limit; kernels rebuild the linear id with `linear_id()` (see shaders/common).
    pub fn dispatch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        shader: &Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        buffers: &[&wgpu::Buffer],
        invocations: u64,
    ) {
        self.dispatch_workgroups(enc, shader, entry, constants, buffers, invocations.div_ceil(WORKGROUP as u64))
    }

    /// Record a launch of `groups` workgroups of whatever size the entry point declares (the GEMM kernels size theirs
    /// by pipeline constants), spread over x and y as `dispatch` does; kernels rebuild the workgroup index from
    /// `workgroup_id` and `num_workgroups`.
    pub fn dispatch_workgroups(
        &self,
        enc: &mut wgpu::CommandEncoder,
        shader: &Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        buffers: &[&wgpu::Buffer],
        groups: u64,
    ) {
        if groups == 0 {
            return;
        }
        let pipeline = self.pipeline(shader, entry, constants);
        let create = || {
            let layout = pipeline.get_bind_group_layout(0);
            let entries: Vec<wgpu::BindGroupEntry> = buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
                .collect();
            self.counters.add(BIND_GROUPS, 1);
            self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(entry), layout: &layout, entries: &entries })
        };
        let bind_group = match active(&ACTIVE_CACHE) {
            Some(cache) => {
                assert!(buffers.len() <= MAX_BINDINGS, "{entry} binds {} buffers, the cache keys on {MAX_BINDINGS}", buffers.len());
                let key = (pipeline.clone(), std::array::from_fn(|i| buffers.get(i).map(|&b| b.clone())));
                cache.0.lock().unwrap().entry(key).or_insert_with(create).clone()
            }
            None => create(),
        };
        self.counters.add(DISPATCHES, 1);
        let (gx, gy) = grid_groups(groups, self.limits.max_compute_workgroups_per_dimension);
        let profiler = active(&ACTIVE_PROFILER);
        let slot = profiler.as_ref().and_then(|p| {
            let mut names = p.names.lock().unwrap();
            (names.len() < p.capacity as usize).then(|| {
                names.push(format!("{}:{entry}", shader.name.trim_end_matches(".wgsl")));
                (names.len() - 1) as u32
            })
        });
        let timestamp_writes = match (&profiler, slot) {
            (Some(p), Some(i)) => Some(wgpu::ComputePassTimestampWrites {
                query_set: &p.query_set,
                beginning_of_pass_write_index: Some(2 * i),
                end_of_pass_write_index: Some(2 * i + 1),
            }),
            _ => None,
        };
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(entry), timestamp_writes });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    /// A profiler for up to `capacity` dispatches, or None where the device has no timestamp queries.
    pub fn profiler(&self, capacity: u32) -> Option<Arc<KernelProfiler>> {
        if !self.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) || capacity == 0 {
            return None;
        }
        let count = 2 * capacity;
        let query_set = self.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profiler"), ty: wgpu::QueryType::Timestamp, count });
        self.note_buffer_created(count as u64 * 8);
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profiler-resolve"),
            size: count as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Some(Arc::new(KernelProfiler { query_set, resolve, capacity, names: Mutex::new(vec![]) }))
    }

    /// (kernel, GPU ms) of each dispatch the profiler timed since the last call, in order; resets it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_profile(&self, p: &KernelProfiler) -> Result<Vec<(String, f64)>, GpuError> {
        let names = std::mem::take(&mut *p.names.lock().unwrap());
        if names.is_empty() {
            return Ok(vec![]);
        }
        let mut enc = self.encoder();
        enc.resolve_query_set(&p.query_set, 0..2 * names.len() as u32, &p.resolve, 0);
        self.submit(enc);
        // the read-back helper copies f32 words; the timestamps are u64 (low word first)
        let words = self.read_many(&[(&p.resolve, 4 * names.len())])?.pop().unwrap_or_default();
        let ticks: Vec<u64> = words.chunks_exact(2).map(|w| w[0].to_bits() as u64 | (w[1].to_bits() as u64) << 32).collect();
        let ns_per_tick = self.queue.get_timestamp_period() as f64;
        Ok(names.into_iter().enumerate().map(|(i, n)| (n, ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * ns_per_tick / 1e6)).collect())
    }

    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    /// Submit without waiting (work queues up behind earlier submissions).
    pub fn submit(&self, enc: wgpu::CommandEncoder) {
        self.counters.add(SUBMITS, 1);
        self.queue.submit([enc.finish()]);
    }

    /// Submit and block until the GPU has finished (GPU timings include this wait).
    pub fn submit_wait(&self, enc: wgpu::CommandEncoder) {
        self.counters.add(SUBMITS, 1);
        self.queue.submit([enc.finish()]);
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }

    fn check_size(&self, label: &str, bytes: u64) -> Result<(), GpuError> {
        let limit = self.max_binding_bytes();
        if bytes > limit {
            return Err(GpuError::TooLarge { label: label.to_string(), bytes, limit });
        }
        Ok(())
    }

    /// Storage buffer holding `data` (at least 4 bytes: wgpu rejects empty bindings).
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer, GpuError> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.check_size(label, bytes.len() as u64)?;
        let padded;
        let contents = if bytes.len() < 4 {
            padded = [0u8; 4];
            &padded[..]
        } else {
            bytes
        };
        self.note_buffer_created(contents.len() as u64);
        Ok(self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        }))
    }

    /// Storage buffer of `len` f32, zero-filled.
    pub fn zeros(&self, label: &str, len: usize) -> Result<wgpu::Buffer, GpuError> {
        let bytes = (len.max(1) * 4) as u64;
        self.check_size(label, bytes)?;
        self.note_buffer_created(bytes);
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// Overwrite the start of `buf` with `data`.
    pub fn write<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, data: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.counters.add(WRITES, 1);
        self.counters.add(WRITE_BYTES, bytes.len() as u64);
        self.queue.write_buffer(buf, 0, bytes);
    }

    /// Overwrite `buf` from byte `offset` on with `data`.
    pub fn write_at<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, offset: u64, data: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.counters.add(WRITES, 1);
        self.counters.add(WRITE_BYTES, bytes.len() as u64);
        self.queue.write_buffer(buf, offset, bytes);
    }

    /// Copy the first `len` f32 of `buf` back to the host (waits for all submitted work). Native only: a
    /// browser cannot block, it uses `read_many_async`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f32(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
        Ok(self.read_many(&[(buf, len)])?.pop().unwrap_or_default())
    }

    /// Copy the first `len` f32 of each buffer back in one submission and one mapping (blocking).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_many(&self, parts: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<f32>>, GpuError> {
        pollster::block_on(self.read_many_async(parts))
    }

    /// Copy the first `len` f32 of each buffer back in one submission and one mapping. Natively this waits on
    /// the device; in a browser it yields to the event loop until the mapping callback has run (a busy loop
    /// would never let it run).
    pub async fn read_many_async(&self, parts: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<f32>>, GpuError> {
        let total: usize = parts.iter().map(|p| p.1).sum();
        if total == 0 {
            return Ok(parts.iter().map(|_| Vec::new()).collect());
        }
        let bytes = (total * 4) as u64;
        self.note_buffer_created(bytes);
        self.counters.add(READBACKS, 1);
        self.counters.add(SUBMITS, 1);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.encoder();
        let mut at = 0u64;
        for (buf, len) in parts {
            let b = (*len * 4) as u64;
            if b > 0 {
                enc.copy_buffer_to_buffer(buf, 0, &staging, at, b);
            }
            at += b;
        }
        self.queue.submit([enc.finish()]);
        let done: std::sync::Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Default::default();
        let flag = done.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        let result = loop {
            #[cfg(not(target_arch = "wasm32"))]
            self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
            if let Some(r) = done.lock().unwrap_or_else(|p| p.into_inner()).take() {
                break r;
            }
            #[cfg(target_arch = "wasm32")]
            yield_now().await;
        };
        result.map_err(|e| GpuError::Readback(e.to_string()))?;
        let out = {
            let view = staging.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?;
            let all: &[f32] = bytemuck::cast_slice(&view);
            let mut at = 0;
            parts
                .iter()
                .map(|(_, len)| {
                    at += len;
                    all[at - len..at].to_vec()
                })
                .collect()
        };
        staging.unmap();
        Ok(out)
    }
}

/// Give the browser's event loop a turn (a `setTimeout(0)` promise): how async code waits in a browser.
#[cfg(target_arch = "wasm32")]
pub async fn yield_now() {
    sleep_ms(0).await
}

/// Wait `ms` milliseconds without blocking the browser.
#[cfg(target_arch = "wasm32")]
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Workgroup grid (x, y) covering `invocations` threads with x ≤ `max_dim`.
pub fn grid(invocations: u64, max_dim: u32) -> (u32, u32) {
    grid_groups(invocations.div_ceil(WORKGROUP as u64), max_dim)
}

/// Workgroup grid (x, y) of at least `groups` workgroups with x ≤ `max_dim`.
pub fn grid_groups(groups: u64, max_dim: u32) -> (u32, u32) {
    let max_dim = max_dim.max(1) as u64;
    if groups <= max_dim {
        (groups as u32, 1)
    } else {
        let gy = groups.div_ceil(max_dim);
        let gx = groups.div_ceil(gy);
        (gx as u32, gy as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_every_invocation_within_limits() {
        for &(n, max) in &[(1u64, 65535u32), (64, 65535), (65, 65535), (64 * 65535 + 1, 65535), (33_554_432, 65535), (1000, 3)] {
            let (gx, gy) = grid(n, max);
            assert!(gx <= max && gx >= 1 && gy >= 1, "{n} {max} -> {gx},{gy}");
            assert!(gx as u64 * gy as u64 * WORKGROUP as u64 >= n, "{n} not covered by {gx}x{gy}");
        }
    }
}
