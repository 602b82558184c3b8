//! The `hyperdistill` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hyperdistill::bench::{self, SuiteOptions};
use hyperdistill::data::{self, fetch, Known};
use hyperdistill::gpu::Gpu;
use hyperdistill::selfcheck;

#[derive(Parser)]
#[command(
    name = "hyperdistill",
    version,
    about = "Hyperbolic Dataset Distillation (HDD) and the DM family on the GPU, with wgpu + WGSL",
    long_about = "Hyperbolic Dataset Distillation (HDD) and the DM family on the GPU, with wgpu + WGSL.\n\n\
                  The GPU backend is chosen automatically (Vulkan, Metal, DX12, then GL); set WGPU_BACKEND=vulkan|metal|dx12|gl \
                  to force one and WGPU_POWER_PREF=low|high to pick an adapter. Without a GPU, install Mesa's software \
                  Vulkan driver (Debian: apt-get install mesa-vulkan-drivers libvulkan1). HYPERDISTILL_SHADER_BOUNDS_CHECKS=off \
                  drops wgpu's runtime bounds checks from the shaders (faster; the checks are on by default); \
                  HYPERDISTILL_SUBGROUPS=off keeps kernels that use subgroups from running on GPUs that have them."
)]
struct Cli {
    /// With no command: the desktop app when a display is present, else this help.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The desktop app: watch the synthetic images evolve, with a Poincaré-disk view of the features.
    Gui {
        /// App settings (TOML, as saved from the app) to start with.
        #[arg(long)]
        settings: Option<PathBuf>,
        /// Dataset to open instead of the embedded Fashion-MNIST subset (a path or a cached name).
        #[arg(long)]
        dataset: Option<String>,
        /// Dataset cache directory [default: $HYPERDISTILL_CACHE, else the platform cache dir + hyperdistill].
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Show the GPU adapter, the limits that matter, and check the engine against the CPU reference.
    Info {
        /// Seed of the self-check's random network and inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Distill a dataset with DM, IDM or DANCE, each with or without HDD, evaluate it, export it (defaults: DM+HDD as the authors
    /// released it).
    Distill(DistillArgs),
    /// Evaluate an exported synthetic set with the papers' protocol (train fresh ConvNets on it, test on real data);
    /// --eval-arch lenet,alexnet,… trains the DC code's other networks instead (cross-architecture evaluation).
    Eval {
        /// A synset.safetensors written by `distill`.
        #[arg(long)]
        synset: PathBuf,
        /// The dataset to test on [default: the one recorded in the file, else embedded].
        #[arg(long)]
        dataset: Option<String>,
        /// Training epochs per network [default: the protocol's, 1000 for dm, 1500 for dance]; giving it labels
        /// results quick.
        #[arg(long)]
        epochs: Option<usize>,
        /// Networks trained from fresh random initialisations; the report gives mean ± std over them [default: 5].
        #[arg(long)]
        nets: Option<usize>,
        /// ConvNet-3 width (channels per conv layer) [default: 128].
        #[arg(long)]
        width: Option<usize>,
        /// 300 epochs × 3 networks; results are labelled quick.
        #[arg(long)]
        quick: bool,
        /// dm: the DM/IDM/HDD code's protocol (1000 epochs, batch 256, last accuracy); dance: DANCE's (1500 epochs,
        /// batch 64, MultiStepLR, CutMix, best of the tests every 250 epochs).
        #[arg(long, default_value = "dm")]
        protocol: String,
        /// Networks to train, comma separated, each evaluated in turn: convnet (ConvNet-3 at --width), mlp, lenet,
        /// alexnet, vgg11, resnet18 (the DC code's cross-architecture pool; VGG11 and ResNet18 with instance norm).
        #[arg(long, default_value = "convnet", value_delimiter = ',')]
        eval_arch: Vec<String>,
        /// Seed of the evaluation networks' initialisation, batches and augmentation.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Dataset cache directory [default: $HYPERDISTILL_CACHE, else the platform cache dir + hyperdistill].
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Hyperbolic pruning of the synthetic set before evaluating it (the other reading of the paper's pruning):
        /// keep this fraction of each class, the images nearest the class's Lorentz centroid under fixed random
        /// ConvNet-3s (k, clamp and map from the file's metadata). 1 = no pruning.
        #[arg(long, default_value_t = 1.0, value_name = "FRACTION")]
        keep_syn: f64,
        /// Random networks whose distances are averaged for --keep-syn.
        #[arg(long, default_value_t = 1)]
        prune_nets: usize,
    },
    /// Datasets: inspect what a path or name loads as, or download the official files.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Measure speed: the adapter's matmul peak, each convolution kernel against it, distillation iterations and
    /// evaluation epochs for the standard configurations, with per-iteration counts and GPU memory.
    ///
    /// The defaults are the papers' sizes (width 128, IPC 1/10/50, batch_real 64/256), meant for real GPUs; on a
    /// software adapter pick a subset, e.g. `--width 32 --ipc 10 --batch-real 64 --test-images 2000`.
    Bench {
        /// What to measure, comma separated: peak (dense matmul, every kernel variant), kernels (each conv kernel
        /// as a fraction of the peak), distill (iterations), eval (training epochs and the test pass), passes
        /// (whole-network forward and forward + backward), breakdown (one distillation iteration and one evaluation
        /// epoch timed kernel by kernel with GPU timestamps, where the adapter has them).
        #[arg(long, default_value = "peak,kernels,distill,eval", value_delimiter = ',')]
        parts: Vec<String>,
        /// Input shapes, comma separated: fmnist (1×28×28), cifar (3×32×32), tiny (3×64×64).
        #[arg(long, default_value = "fmnist,cifar", value_delimiter = ',')]
        shapes: Vec<String>,
        /// Channels of every conv layer (128 in the papers).
        #[arg(long, default_value_t = 128)]
        width: usize,
        /// distill, eval: synthetic images per class, comma separated.
        #[arg(long, default_value = "1,10,50", value_delimiter = ',')]
        ipc: Vec<usize>,
        /// distill: real images per class per iteration, comma separated.
        #[arg(long, default_value = "64,256", value_delimiter = ',')]
        batch_real: Vec<usize>,
        /// distill: methods, comma separated (dm, dm+hdd, idm, idm+hdd, dance, dance+hdd; IDM and DANCE with their
        /// default options: IDM trains 2 queue nets × 10 steps × 256 images per iteration).
        #[arg(long, default_value = "dm,dm+hdd", value_delimiter = ',')]
        method: Vec<String>,
        /// Timed runs per measurement (medians and minima are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Untimed runs first (pipeline compilation, caches).
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// peak: side of the square matmul (rounded up to a multiple of 64).
        #[arg(long, default_value_t = 1024)]
        matmul: usize,
        /// kernels, passes: images per batch.
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// eval: training epochs timed (the protocol runs 1000 + 1).
        #[arg(long, default_value_t = 5)]
        eval_epochs: usize,
        /// eval: training batch size.
        #[arg(long, default_value_t = 256)]
        eval_batch: usize,
        /// eval: networks trained, comma separated: convnet, mlp, lenet, alexnet, vgg11, resnet18.
        #[arg(long, default_value = "convnet", value_delimiter = ',')]
        eval_arch: Vec<String>,
        /// eval: test images in the timed test pass.
        #[arg(long, default_value_t = 10000)]
        test_images: usize,
        /// Also write the whole report as JSON to this file (compare runs over time, or with benches/torch_ref.py).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seed of the benchmark's random inputs and networks.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Instead: time every kernel of ConvNet-3 (convolutions, norms, activations, pools) on its own, for the
        /// first shape, at --batch.
        #[arg(long)]
        profile: bool,
        /// Same as --parts distill.
        #[arg(long)]
        distill: bool,
    },
}

#[derive(clap::Args)]
struct DistillArgs {
    /// TOML file with any of the options below (and [distill]/[eval] tables); command-line flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in DIR from its checkpoint, exactly as if it had not stopped (refused where the options given
    /// beside it would change the result).
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// Replace the run the output directory holds (without it, a directory that holds a run is refused).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// "embedded" (built-in Fashion-MNIST subset), a path, or a dataset name in the cache.
    #[arg(long)]
    dataset: Option<String>,
    /// dm, dm+hdd, idm, idm+hdd, dance or dance+hdd. Given on the command line it also sets that method's
    /// published k, λ, lr_img, iterations, batch_real and IDM/DANCE options for the IPC (method.md §1.7, §4.2),
    /// and DANCE's evaluation protocol for DANCE; other flags override them.
    #[arg(long)]
    method: Option<String>,
    /// Synthetic images per class.
    #[arg(long)]
    ipc: Option<usize>,
    /// Distillation iterations (0: evaluate the initialisation) [default: the method's published number].
    #[arg(long)]
    iterations: Option<usize>,
    /// Real images per class per iteration.
    #[arg(long)]
    batch_real: Option<usize>,
    /// Learning rate of the synthetic pixels (SGD, momentum 0.5; DANCE's is in [0, 1] pixel units) [default: the
    /// method's published value for the IPC].
    #[arg(long)]
    lr_img: Option<f32>,
    /// ConvNet width (channels per conv layer).
    #[arg(long)]
    width: Option<usize>,
    /// Seed of every random choice (initial images, networks, batches, augmentations), through one ChaCha generator.
    #[arg(long)]
    seed: Option<u64>,
    /// HDD: geoopt's curvature parameter k > 0.
    #[arg(long)]
    k: Option<f64>,
    /// HDD: weight λ of the geodesic distance.
    #[arg(long)]
    lambda: Option<f32>,
    /// HDD: radius clamp of the exponential map, a number or "off".
    #[arg(long)]
    clamp: Option<String>,
    /// HDD: expmap or projx.
    #[arg(long)]
    map: Option<String>,
    /// HDD: weight each sample in its class centroid by w = τ/sinh τ (τ: geodesic distance from the origin / √k),
    /// the paper's hierarchical weighting; not in the authors' code, and without effect while the clamp is active.
    #[arg(long)]
    weighted_centroid: bool,
    /// DSA strategy, e.g. color_crop_cutout_flip_scale_rotate, or none.
    #[arg(long)]
    dsa: Option<String>,
    /// real or noise.
    #[arg(long)]
    init: Option<String>,
    /// IDM: weight of the class-aware CE regulariser (times the net's running training accuracy in %).
    #[arg(long)]
    ce_weight: Option<f32>,
    /// IDM: length of the queue of partly trained networks.
    #[arg(long)]
    net_num: Option<usize>,
    /// IDM: push a new random network every N iterations.
    #[arg(long)]
    net_generate_interval: Option<usize>,
    /// IDM: queue networks trained per iteration.
    #[arg(long)]
    fetch_net_num: Option<usize>,
    /// IDM: SGD steps per trained network per iteration.
    #[arg(long)]
    model_train_steps: Option<usize>,
    /// IDM: real images per network training step.
    #[arg(long)]
    net_batch: Option<usize>,
    /// IDM, DANCE: store plain images instead of 2×2 mosaics (no partition and expansion / multi-formation).
    #[arg(long)]
    no_mosaic: bool,
    /// DANCE: experts trained on the real data (each saved in --expert-dir and reused).
    #[arg(long)]
    experts: Option<usize>,
    /// DANCE: the first N experts are sampled during distillation.
    #[arg(long)]
    num_premodel: Option<usize>,
    /// DANCE: training epochs of each expert.
    #[arg(long)]
    expert_epochs: Option<usize>,
    /// DANCE: where experts are saved and reused [default: OUT/experts].
    #[arg(long)]
    expert_dir: Option<PathBuf>,
    /// Evaluate every N iterations (0: only at the end).
    #[arg(long)]
    eval_every: Option<usize>,
    /// Epochs per evaluation network [default: the protocol's]; giving it labels results quick.
    #[arg(long)]
    eval_epochs: Option<usize>,
    /// Networks per evaluation, mean ± std over them [default: 5].
    #[arg(long)]
    eval_nets: Option<usize>,
    /// Evaluate with 300 epochs × 3 networks (labelled quick in every output).
    #[arg(long)]
    quick: bool,
    /// Evaluation protocol: dm (the DM/IDM/HDD code's) or dance (DANCE's: MultiStepLR, CutMix, best accuracy).
    #[arg(long)]
    eval_protocol: Option<String>,
    /// Network the evaluation trains: convnet (default), mlp, lenet, alexnet, vgg11 or resnet18 (the DC code's
    /// cross-architecture pool; VGG11 and ResNet18 with instance norm).
    #[arg(long)]
    eval_arch: Option<String>,
    /// Save a checkpoint every N iterations (resume with --resume OUT; 0: only at the end).
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Also write one PNG per synthetic image under OUT/images/<class>/.
    #[arg(long)]
    export_images: bool,
    /// Hyperbolic pruning: distill against only this fraction of each class's real images, those nearest the
    /// class's Lorentz centroid under fixed random ConvNet-3s (e.g. 0.2; default 1 = all).
    #[arg(long)]
    keep_real: Option<f64>,
    /// Random networks averaged for the pruning ranking.
    #[arg(long)]
    prune_nets: Option<usize>,
    /// Output directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Dataset cache directory [default: $HYPERDISTILL_CACHE, else the platform cache dir + hyperdistill].
    #[arg(long)]
    cache: Option<PathBuf>,
}

impl DistillArgs {
    fn resolve(&self) -> Result<hyperdistill::run::RunConfig> {
        use hyperdistill::distill::{Init, Method};
        use hyperdistill::lorentz::LorentzMap;
        let mut c = match (&self.config, &self.resume) {
            (Some(p), _) => hyperdistill::run::RunConfig::from_toml_file(p)?,
            (None, Some(dir)) => hyperdistill::run::RunConfig::from_toml_file(&dir.join("config.toml"))?,
            (None, None) => hyperdistill::run::RunConfig::default(),
        };
        // the method's published values first, so that every other flag (--eval-protocol included) overrides them
        if let Some(v) = &self.dataset { c.dataset = v.clone(); }
        if let Some(v) = self.ipc { c.distill.ipc = v; }
        if let Some(v) = &self.method {
            c.distill.method = Method::parse(v).map_err(anyhow::Error::msg)?;
            c.distill.apply_method_defaults();
            if c.distill.method.dance() {
                c.eval = hyperdistill::eval::EvalConfig { width: c.eval.width, arch: c.eval.arch, ..hyperdistill::eval::EvalConfig::dance() };
            }
        }
        if let Some(p) = &self.eval_protocol {
            c.eval = match p.as_str() {
                "dm" => hyperdistill::eval::EvalConfig { width: c.eval.width, arch: c.eval.arch, ..Default::default() },
                "dance" => hyperdistill::eval::EvalConfig { width: c.eval.width, arch: c.eval.arch, ..hyperdistill::eval::EvalConfig::dance() },
                o => bail!("--eval-protocol {o}: use dm or dance"),
            };
        }
        if self.quick {
            c.eval = hyperdistill::eval::EvalConfig { width: c.eval.width, epochs: 300, nets: 3, quick: true, ..c.eval.clone() };
        }
        if let Some(v) = &self.eval_arch { c.eval.arch = hyperdistill::nn::arch::Arch::parse(v).map_err(anyhow::Error::msg)?; }
        if let Some(v) = self.iterations { c.distill.iterations = v; }
        if let Some(v) = self.batch_real { c.distill.batch_real = v; }
        if let Some(v) = self.lr_img { c.distill.lr_img = v; }
        if let Some(v) = self.width { c.distill.width = v; c.eval.width = v; }
        if let Some(v) = self.seed { c.distill.seed = v; }
        if let Some(v) = self.k { c.distill.k = v; }
        if let Some(v) = self.lambda { c.distill.lambda = v; }
        if let Some(v) = &self.clamp {
            c.distill.clamp = if v == "off" { None } else { Some(v.parse().with_context(|| format!("--clamp {v}: a number or off"))?) };
        }
        if let Some(v) = &self.map {
            c.distill.map = match v.as_str() { "expmap" => LorentzMap::Expmap, "projx" => LorentzMap::Projx, o => bail!("--map {o}: use expmap or projx") };
        }
        if self.weighted_centroid { c.distill.weighted_centroid = true; }
        if let Some(v) = &self.dsa { c.distill.dsa = v.clone(); c.eval.dsa = v.clone(); }
        if let Some(v) = &self.init {
            c.distill.init = match v.as_str() { "real" => Init::Real, "noise" => Init::Noise, o => bail!("--init {o}: use real or noise") };
        }
        let idm = &mut c.distill.idm;
        if let Some(v) = self.ce_weight { idm.ce_weight = v; }
        if let Some(v) = self.net_num { idm.net_num = v; }
        if let Some(v) = self.net_generate_interval { idm.net_generate_interval = v; }
        if let Some(v) = self.fetch_net_num { idm.fetch_net_num = v; }
        if let Some(v) = self.model_train_steps { idm.model_train_steps = v; }
        if let Some(v) = self.net_batch { idm.net_batch = v; }
        if self.no_mosaic { idm.mosaic = false; c.distill.dance.mosaic = false; }
        let dance = &mut c.distill.dance;
        if let Some(v) = self.experts { dance.experts = v; }
        if let Some(v) = self.num_premodel { dance.num_premodel = v; }
        if let Some(v) = self.expert_epochs { dance.expert_epochs = v; }
        if let Some(v) = &self.expert_dir { dance.expert_dir = v.to_string_lossy().into_owned(); }
        if let Some(v) = self.eval_every { c.eval_every = v; }
        if let Some(v) = self.eval_epochs { c.eval.epochs = v; c.eval.quick = true; }
        if let Some(v) = self.eval_nets { c.eval.nets = v; }
        if let Some(v) = self.checkpoint_every { c.checkpoint_every = v; }
        if self.export_images { c.export_images = true; }
        if let Some(v) = self.keep_real { c.keep_real = v; }
        if let Some(v) = self.prune_nets { c.prune_nets = v; }
        if let Some(v) = &self.out { c.out = v.clone(); }
        if let Some(dir) = &self.resume { c.out = dir.clone(); }
        Ok(c)
    }
}

#[derive(Subcommand)]
enum DataCommand {
    /// Load a dataset and print what was loaded: classes, counts per split, shape, normalisation.
    Info {
        /// A directory or .zip (IDX, CIFAR binary, SVHN .mat, image folders, Tiny ImageNet), a dataset name
        /// (mnist, fashion-mnist, svhn, cifar10, cifar100, tiny-imagenet; looked up in the cache), or "embedded".
        #[arg(default_value = "embedded")]
        dataset: String,
        /// Cache directory of `data fetch` [default: $HYPERDISTILL_CACHE, else the platform cache dir].
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Download a dataset's official files into the cache, verify their checksums, unpack archives.
    Fetch {
        /// mnist, fashion-mnist, svhn, cifar10, cifar100 or tiny-imagenet.
        name: String,
        /// Cache directory [default: $HYPERDISTILL_CACHE, else the platform cache dir].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Base URL to download from instead of the official host (files keep their official names).
        #[arg(long)]
        mirror: Option<String>,
        /// Seconds to wait for a connection [default: $HYPERDISTILL_CONNECT_TIMEOUT, else 30].
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        connect_timeout: Option<u64>,
        /// Seconds to wait for any data while receiving (a stalled server ends the download; the part is kept and the
        /// next run resumes it) [default: $HYPERDISTILL_READ_TIMEOUT, else 60].
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        read_timeout: Option<u64>,
    },
}

/// The Lorentz map recorded in an exported set's metadata (k, clamp, map), defaults where absent.
fn hyperbolic_of(meta: &std::collections::BTreeMap<String, String>) -> Result<hyperdistill::lorentz::Hyperbolic> {
    let mut h = hyperdistill::distill::DistillConfig::default().hyperbolic();
    if let Some(k) = meta.get("k") {
        h.k = k.parse().with_context(|| format!("metadata k = '{k}' is not a number"))?;
    }
    match meta.get("clamp").map(String::as_str) {
        None => {}
        Some("off") => h.clamp = None,
        Some(c) => h.clamp = Some(c.parse().with_context(|| format!("metadata clamp = '{c}' is not a number or 'off'"))?),
    }
    match meta.get("map").map(String::as_str) {
        None | Some("expmap") => {}
        Some("projx") => h.map = hyperdistill::lorentz::LorentzMap::Projx,
        Some(m) => bail!("metadata map = '{m}': expected expmap or projx"),
    }
    h.weighted = meta.get("weighted_centroid").is_some_and(|w| w == "true");
    Ok(h)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,wgpu_hal::gles=off")).init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let command = match cli.command {
        Some(c) => c,
        None if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() => {
            Command::Gui { settings: None, dataset: None, cache: None }
        }
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            return Ok(ExitCode::from(2));
        }
    };
    match command {
        Command::Gui { settings, dataset, cache } => gui(settings, dataset, cache),
        Command::Info { seed } => info(seed),
        Command::Data { command: DataCommand::Info { dataset, cache } } => data_info(&dataset, cache),
        Command::Distill(args) => {
            let cfg = args.resolve()?;
            let gpu = Gpu::new()?;
            eprintln!("adapter: {}", gpu.describe());
            let cache = args.cache.clone().unwrap_or_else(fetch::default_cache_dir);
            use hyperdistill::run::Start;
            let start = if args.resume.is_some() { Start::Resume } else if args.overwrite { Start::Overwrite } else { Start::Fresh };
            let o = hyperdistill::run::run(&gpu, &cfg, start, &cache)?;
            if o.steps > 0 {
                println!("{:.3} s per iteration over {} iterations (distillation steps only)", o.seconds_per_iteration, o.steps);
            }
            if let Some(r) = &o.final_eval {
                println!("final test accuracy {:.2} ± {:.2} % ({} nets, {} epochs{})", 100.0 * r.mean, 100.0 * r.std, r.accuracies.len(), r.epochs + 1,
                    if r.quick { ", quick protocol" } else { "" });
            }
            println!("wrote {0}/synset.safetensors, {0}/synset.png, {0}/metrics.jsonl, {0}/config.toml, {0}/checkpoint.safetensors", o.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval { synset, dataset, epochs, nets, width, quick, protocol, eval_arch, seed, cache, keep_syn, prune_nets } => {
            let archs = eval_arch.iter().map(|a| hyperdistill::nn::arch::Arch::parse(a)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            let base = match protocol.as_str() {
                "dm" => hyperdistill::eval::EvalConfig::default(),
                "dance" => hyperdistill::eval::EvalConfig::dance(),
                o => bail!("--protocol {o}: use dm or dance"),
            };
            if !(keep_syn > 0.0 && keep_syn <= 1.0) {
                bail!("--keep-syn must be in (0, 1], got {keep_syn}");
            }
            if prune_nets == 0 {
                bail!("--prune-nets must be at least 1");
            }
            let mut cfg = if quick { hyperdistill::eval::EvalConfig { epochs: 300, nets: 3, quick: true, ..base } } else { base };
            if let Some(v) = epochs { cfg.epochs = v; cfg.quick = true; }
            if let Some(v) = nets { cfg.nets = v; }
            if let Some(v) = width { cfg.width = v; }
            cfg.validate().map_err(anyhow::Error::msg)?;
            let mut set = hyperdistill::export::read_safetensors(&synset)?;
            // the spec the set was distilled from; older files only name the dataset (the embedded subset's source
            // says "embedded …")
            let from_file = dataset.is_none();
            let spec = dataset.or_else(|| set.meta.get("dataset_spec").cloned()).unwrap_or_else(|| match (set.meta.get("dataset_source"), set.meta.get("dataset")) {
                (Some(src), _) if src.starts_with("embedded") => "embedded".into(),
                (_, Some(name)) => name.clone(),
                _ => "embedded".into(),
            });
            let cache = cache.unwrap_or_else(fetch::default_cache_dir);
            let ds = data::open(&spec, &cache).with_context(|| {
                if from_file {
                    format!("{} names its dataset '{spec}' (recorded when it was distilled), which could not be opened; give the dataset with --dataset", synset.display())
                } else {
                    format!("--dataset {spec}")
                }
            })?;
            if (set.c, set.h, set.w) != (ds.channels, ds.height, ds.width) {
                bail!("{}: images are {}×{}×{}, dataset '{}' has {}×{}×{}", synset.display(), set.c, set.h, set.w, ds.name, ds.channels, ds.height, ds.width);
            }
            if let Some(&bad) = set.labels.iter().find(|&&l| l as usize >= ds.classes.len()) {
                bail!("{}: label {bad} but '{}' has {} classes", synset.display(), ds.name, ds.classes.len());
            }

            let gpu = Gpu::new()?;
            if set.meta.get("mosaic").is_some_and(|m| m == "true") {
                // IDM's partition and expansion: networks train on the 4 upsampled quadrants of every stored image
                let (images, labels) = hyperdistill::mosaic::expand_set(&set.images, &set.labels, set.c, set.h, set.w);
                eprintln!("IDM mosaics: evaluating on the {} expanded images of the {} stored ones", labels.len(), set.labels.len());
                (set.images, set.labels) = (images, labels);
            }
            if keep_syn < 1.0 {
                let hyper = hyperbolic_of(&set.meta)?;
                let bar = indicatif::ProgressBar::hidden();
                let ranking = hyperdistill::prune::rank_synthetic(&gpu, &set, ds.classes.len(), cfg.width, prune_nets, &hyper, seed, &bar)?;
                let before = set.labels.len();
                set = hyperdistill::prune::keep_synthetic(&set, &ranking, keep_syn);
                eprintln!("pruned the synthetic set: kept {} of {before} images (k {}, clamp {:?}, {:?})", set.labels.len(), hyper.k, hyper.clamp, hyper.map);
            }
            for arch in archs {
                cfg.arch = arch;
                let r = hyperdistill::eval::evaluate(&gpu, &ds, &set.images, &set.labels, &cfg, seed, &mut |k, ep| {
                    if ep % 50 == 0 { eprintln!("{} net {}/{} epoch {ep}/{}", arch.name(), k + 1, cfg.nets, cfg.epochs); }
                })?;
                println!("{} test accuracy {:.2} ± {:.2} % over {} nets ({} protocol, {} passes{}{}): {:?}", arch.name(), 100.0 * r.mean, 100.0 * r.std,
                    r.accuracies.len(), protocol, cfg.passes(), if cfg.protocol == hyperdistill::eval::Protocol::Dance { ", best tested accuracy per net" } else { "" },
                    if r.quick { ", quick" } else { "" }, r.accuracies);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { command: DataCommand::Fetch { name, dir, mirror, connect_timeout, read_timeout } } => {
            let k = Known::parse(&name).with_context(|| {
                format!("unknown dataset '{name}': use one of {}", Known::ALL.map(Known::name).join(", "))
            })?;
            let dir = dir.unwrap_or_else(fetch::default_cache_dir);
            let mut t = fetch::Timeouts::default();
            if let Some(s) = connect_timeout { t.connect = std::time::Duration::from_secs(s); }
            if let Some(s) = read_timeout { t.read = std::time::Duration::from_secs(s); }
            let dest = fetch::fetch_with(k, &dir, mirror.as_deref(), t, &mut |m| eprintln!("{m}"))?;
            println!("{} is in {}", k.name(), dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            parts, shapes, width, ipc, batch_real, method, runs, warmup, matmul, batch, eval_epochs, eval_batch, eval_arch, test_images, json, seed,
            profile, distill,
        } => {
            if batch == 0 || width == 0 || runs == 0 || eval_batch == 0 || test_images == 0 {
                bail!("--batch, --width, --runs, --eval-batch and --test-images must be at least 1");
            }
            if ipc.contains(&0) || batch_real.contains(&0) {
                bail!("--ipc and --batch-real must be at least 1");
            }
            let shapes = shapes
                .iter()
                .map(|s| match s.trim() {
                    "fmnist" | "mnist" => Ok((1, 28)),
                    "cifar" | "svhn" => Ok((3, 32)),
                    "tiny" => Ok((3, 64)),
                    other => bail!("unknown shape '{other}': use fmnist, cifar or tiny"),
                })
                .collect::<Result<Vec<_>>>()?;
            if profile {
                let gpu = Gpu::new()?;
                let (c, s) = shapes[0];
                println!("adapter {}; batch {batch}, width {width}, {c}x{s}x{s}; median of {runs} runs, one submit each", gpu.describe());
                let t = bench::profile(&gpu, c, s, width, batch, runs)?;
                let total: f64 = t.iter().map(|k| k.ms).sum();
                for k in &t {
                    println!("{:<40} {:>10.2} ms {:>5.1} %  {}", k.kernel, k.ms, 100.0 * k.ms / total,
                        if k.gflops > 0.0 { format!("{:.2} GFLOP/s", k.gflops) } else { String::new() });
                }
                return Ok(ExitCode::SUCCESS);
            }
            let parts = if distill { vec!["distill".to_string()] } else { parts };
            let parts = parts.iter().map(|p| bench::Part::parse(p).map_err(anyhow::Error::msg)).collect::<Result<Vec<_>>>()?;
            let methods = method.iter().map(|m| hyperdistill::distill::Method::parse(m).map_err(anyhow::Error::msg)).collect::<Result<Vec<_>>>()?;
            let opts = SuiteOptions {
                parts, shapes, width, ipcs: ipc, batch_reals: batch_real, methods, runs, warmup, seed, matmul, batch, eval_epochs,
                eval_batch, test_images,
                eval_archs: eval_arch.iter().map(|a| hyperdistill::nn::arch::Arch::parse(a)).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?,
            };
            bench_suite(&opts, json)
        }
    }
}

fn info(seed: u64) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let i = &gpu.info;
    let l = &gpu.limits;
    println!("adapter      {}", i.name);
    println!("backend      {:?}", i.backend);
    println!("device type  {:?}", i.device_type);
    println!("driver       {} {}", i.driver, i.driver_info);
    println!("limits");
    println!("  max_storage_buffer_binding_size       {} MiB", l.max_storage_buffer_binding_size as u64 >> 20);
    println!("  max_buffer_size                       {} MiB", l.max_buffer_size >> 20);
    println!("  max_storage_buffers_per_shader_stage  {}", l.max_storage_buffers_per_shader_stage);
    println!("  max_compute_workgroup_storage_size    {} KiB", l.max_compute_workgroup_storage_size >> 10);
    println!("  max_compute_invocations_per_workgroup {}", l.max_compute_invocations_per_workgroup);
    println!("  max_compute_workgroups_per_dimension  {}", l.max_compute_workgroups_per_dimension);
    let f = gpu.adapter.features();
    println!(
        "features     shader-f16 {}, subgroups {}, timestamp-query {}",
        yes(f.contains(wgpu::Features::SHADER_F16)),
        yes(f.contains(wgpu::Features::SUBGROUP)),
        yes(f.contains(wgpu::Features::TIMESTAMP_QUERY))
    );
    println!("self-check   ConvNet-3 forward (embed) and backward to the input, GPU f32 vs CPU f64 reference");
    let results = selfcheck::run(&gpu, seed).context("self-check could not run")?;
    let mut ok = true;
    for r in &results {
        println!(
            "  {:<26} embed rel err {:.2e}, input-grad rel err {:.2e}  {}",
            r.shape,
            r.embed_rel_err,
            r.input_grad_rel_err,
            if r.passed() { "ok" } else { "FAILED" }
        );
        ok &= r.passed();
    }
    let max = results.iter().map(|r| r.max_err()).fold(0.0, f64::max);
    println!("  max relative error {max:.2e} (tolerance {:.0e})", selfcheck::TOLERANCE);
    if !ok {
        eprintln!("error: this adapter's results disagree with the CPU reference; please report it with the output above");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn data_info(spec: &str, cache: Option<PathBuf>) -> Result<ExitCode> {
    let cache = cache.unwrap_or_else(fetch::default_cache_dir);
    let t = std::time::Instant::now();
    let ds = data::open(spec, &cache)?;
    let secs = t.elapsed().as_secs_f64();
    println!("dataset     {}", ds.name);
    println!("source      {}", ds.source);
    println!("image       {} × {} × {} (channels × height × width)", ds.channels, ds.height, ds.width);
    if ds.height != ds.width {
        println!("note        the networks take square images: this dataset can be inspected but not distilled or evaluated");
    }
    println!("classes     {}", ds.classes.len());
    for (split_name, split) in [("train", &ds.train), ("test", &ds.test)] {
        let counts: Vec<usize> = ds.class_indices(split).iter().map(Vec::len).collect();
        let (lo, hi) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
        println!("{split_name:<11} {} images, per class {lo}..{hi}", split.len());
    }
    let show = ds.classes.len().min(20);
    let train_counts = ds.class_indices(&ds.train);
    let test_counts = ds.class_indices(&ds.test);
    for c in 0..show {
        println!("  {c:>3} {:<24} train {:>6}  test {:>6}", ds.classes[c], train_counts[c].len(), test_counts[c].len());
    }
    if ds.classes.len() > show {
        println!("  … {} more classes", ds.classes.len() - show);
    }
    let fmt = |v: &[f32]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
    println!("normalise   mean [{}], std [{}]{}", fmt(&ds.mean), fmt(&ds.std),
        if ds.known.is_some() { " (the papers' values)" } else { " (measured on the training split)" });
    let (m, s) = ds.pixel_stats(&ds.train);
    let fmt64 = |v: &[f64]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
    println!("measured    train pixels in [0,1]: mean [{}], std [{}]", fmt64(&m), fmt64(&s));
    println!("loaded in   {secs:.2} s, {:.1} MiB of pixels", (ds.train.images.len() + ds.test.images.len()) as f64 / (1 << 20) as f64);
    Ok(ExitCode::SUCCESS)
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One line per kernel of a breakdown: dispatches, GPU ms and share of `gpu_ms`.
fn print_kernel_shares(kernels: &[hyperdistill::bench::KernelShare], gpu_ms: f64) {
    for k in kernels {
        println!("  {:<32} {:>4} × {:>10.2} ms {:>5.1} %", k.kernel, k.dispatches, k.ms, 100.0 * k.ms / gpu_ms.max(1e-9));
    }
}

fn bench_suite(o: &SuiteOptions, json: Option<PathBuf>) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}", gpu.describe());
    let bar = indicatif::ProgressBar::new(bench::suite_steps(o)).with_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}  (ETA {eta})")
            .expect("valid template"),
    );
    let r = bench::suite(&gpu, o, &bar)?;
    bar.finish_and_clear();
    println!("adapter {} ({}, {}, driver {}); hyperdistill {}; shader bounds checks {}; norm kernels {}", r.adapter, r.backend, r.device_type,
        r.driver, r.hyperdistill, if r.bounds_checks { "on" } else { "off (HYPERDISTILL_SHADER_BOUNDS_CHECKS)" }, r.norm_kernel);
    println!("(GPU times are wall times of encode + submit + wait; medians of {} runs after {} warm-up; FLOP = 2 × MACs)", o.runs, o.warmup);
    if let Some(p) = &r.peak {
        println!("\nmatmul peak ({0}×{0}×{0})", p.timings.first().map(|t| t.size).unwrap_or(0));
        for t in &p.timings {
            println!("  {:<10} median {:>9.1} ms  min {:>9.1} ms  {:>8.2} GFLOP/s (fastest run)", t.kernel, t.median_ms, t.min_ms, t.gflops);
        }
        println!("  peak {:.2} GFLOP/s ({})", p.gflops, p.best_kernel);
    }
    if !r.kernels.is_empty() {
        println!("\nconvolution kernels (batch {}, width {})", o.batch, o.width);
        println!("  {:<9} {:<16} {:>10} {:>6} {:>10} {:>9} {:>8}", "shape", "kernel", "cin→cout", "side", "median ms", "GFLOP/s", "of peak");
        for k in &r.kernels {
            println!("  {:<9} {:<16} {:>10} {:>6} {:>10.1} {:>9.2} {:>8}", k.shape, format!("conv{} {}", k.layer, k.pass),
                format!("{}→{}", k.cin, k.cout), k.side, k.median_ms, k.gflops,
                k.fraction_of_peak.map(|f| format!("{:.0} %", 100.0 * f)).unwrap_or_else(|| "–".into()));
        }
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    if !r.distill.is_empty() {
        println!("\ndistillation iterations (width {}; generated data, 10 classes; counts per iteration)", o.width);
        println!("  {:<9} {:<7} {:>4} {:>6} {:>10} {:>8} {:>8} {:>5} {:>5} {:>6} {:>10} {:>7} {:>6} {:>9} {:>9}",
            "shape", "method", "ipc", "b_real", "median ms", "GFLOP", "GFLOP/s", "disp", "subm", "rdback", "upload B", "buffers", "bindg",
            "buf MiB", "alloc MiB");
        for b in &r.distill {
            let c = &b.per_iteration;
            println!("  {:<9} {:<7} {:>4} {:>6} {:>10.1} {:>8.2} {:>8.2} {:>5} {:>5} {:>6} {:>10} {:>7} {:>6} {:>9.1} {:>9}",
                b.shape, b.method, b.ipc, b.batch_real, b.median_ms, b.gflop, b.gflops, c.dispatches, c.submits, c.readbacks,
                c.write_bytes, c.buffers_created, c.bind_groups_created, mib(b.buffer_bytes),
                b.allocated_bytes.map(|a| format!("{:.1}", mib(a))).unwrap_or_else(|| "–".into()));
        }
    }
    if !r.eval.is_empty() {
        println!("\nevaluation (width {}, batch {}; {} timed epochs each)", o.width, o.eval_batch, o.eval_epochs + 1);
        println!("  {:<9} {:<9} {:>4} {:>7} {:>12} {:>9} {:>12} {:>12} {:>9}", "network", "shape", "ipc", "images", "ms/epoch", "GFLOP/s", "test images",
            "test pass ms", "buf MiB");
        for e in &r.eval {
            println!("  {:<9} {:<9} {:>4} {:>7} {:>12.1} {:>9.2} {:>12} {:>12.1} {:>9.1}", e.arch, e.shape, e.ipc, e.images, e.ms_per_epoch, e.gflops,
                e.test_images, e.test_pass_ms, mib(e.buffer_bytes));
        }
    }
    if !r.passes.is_empty() {
        println!("\nwhole-network passes (batch {}, width {})", o.batch, o.width);
        for t in &r.passes {
            println!("  {:<10} {:<28} {:>10.1} ms {:>9.2} GFLOP/s {:>10.1} images/s", t.shape, t.pass, t.median_ms, t.gflops, t.images_per_s);
        }
    }
    for b in &r.breakdown {
        println!("\none iteration, kernel by kernel (GPU timestamps): {} {} ipc {} batch_real {} width {}: wall {:.1} ms, compute passes {:.1} ms",
            b.shape, b.method, b.ipc, b.batch_real, b.width, b.wall_ms, b.gpu_ms);
        print_kernel_shares(&b.kernels, b.gpu_ms);
    }
    for b in &r.eval_breakdown {
        println!("\none evaluation epoch, kernel by kernel (GPU timestamps): {} {} ipc {} ({} images, batch {}) width {}: wall {:.1} ms, compute passes {:.1} ms",
            b.arch, b.shape, b.ipc, b.images, b.batch, b.width, b.wall_ms, b.gpu_ms);
        print_kernel_shares(&b.kernels, b.gpu_ms);
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&r)?).with_context(|| format!("writing {}", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "app")]
fn gui(settings: Option<PathBuf>, dataset: Option<String>, cache: Option<PathBuf>) -> Result<ExitCode> {
    use hyperdistill::app::{self, AppSettings};
    let mut s = match &settings {
        Some(p) => AppSettings::load(p)?,
        None => AppSettings::default(),
    };
    if let Some(d) = dataset {
        s.dataset = d;
    }
    s.validate().map_err(anyhow::Error::msg)?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!("the app needs a display (DISPLAY or WAYLAND_DISPLAY); on a headless machine run it under xvfb-run");
    }
    app::run_native(s, cache.unwrap_or_else(fetch::default_cache_dir))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "app"))]
fn gui(_: Option<PathBuf>, _: Option<String>, _: Option<PathBuf>) -> Result<ExitCode> {
    bail!("this build has no app: rebuild with the default feature \"app\"")
}
