//! The `hyperdistill` command line: parses the arguments and hands each command to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hyperdistill::bench::{self, SuiteOptions};
use hyperdistill::data::{self, fetch, Known};
use hyperdistill::distill::{Init, Method};
use hyperdistill::eval::EvalConfig;
use hyperdistill::gpu::Gpu;
use hyperdistill::hdd::LorentzMap;
use hyperdistill::nn::arch::Arch;
use hyperdistill::run::{self, RunConfig, Shard, Start};

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
                  HYPERDISTILL_SUBGROUPS=off keeps kernels that use subgroups from running on GPUs that have them. \
                  HYPERDISTILL_AUTOTUNE=off|on|refresh: pick each convolution's kernel by timing the candidates on this \
                  device once per shape, remembered in the cache directory (default: on for GPUs, off for CPU adapters; \
                  `info` lists the picks; a resumed run uses the kernels its checkpoint recorded); a run measures for at \
                  most HYPERDISTILL_AUTOTUNE_BUDGET seconds (default 10, inf for no bound; refresh measures every \
                  shape), later shapes run the hand-made choice and are measured by later runs. \
                  HYPERDISTILL_MAX_FILE_MB and HYPERDISTILL_MAX_DATASET_MB bound what a dataset file may make it hold \
                  (1024 and 16384 MiB)."
)]
struct Cli {
    /// With no command: the desktop app when a display is present, else this help.
    #[command(subcommand)]
    command: Option<Command>,
    /// The GPU to run on: an index in `info --adapters`, or a part of its name [default: $HYPERDISTILL_ADAPTER, else
    /// the preferred adapter]. On a node with several GPUs each process of a job array takes its own.
    #[arg(long, global = true, value_name = "INDEX|NAME")]
    adapter: Option<String>,
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
        /// List every adapter with the index `--adapter` takes, and stop.
        #[arg(long)]
        adapters: bool,
    },
    /// Distill a dataset with DM, IDM or DANCE, each with or without HDD, evaluate it, export it (defaults: DM+HDD as the authors
    /// released it).
    Distill(Box<DistillArgs>),
    /// Evaluate an exported synthetic set with the papers' protocol (train fresh ConvNets on it, test on real data);
    /// --eval-arch lenet,alexnet,… trains the DC code's other networks instead (cross-architecture evaluation).
    Eval(EvalArgs),
    /// Join the parts of a split job: the shard folders of a distillation (`distill --shard`) into one synthetic set in
    /// the folder OUT, or the `eval --json` files of an evaluation split by network (`eval --shard`) into the file OUT
    /// with the mean ± std of every network. Parts that do not belong together, overlap or leave a gap are refused.
    Merge {
        /// The merged set's folder, or the merged evaluation's JSON file.
        out: PathBuf,
        /// The shard folders (or `eval --json` files).
        #[arg(required = true)]
        parts: Vec<PathBuf>,
    },
    /// Train DANCE's experts (and nothing else) into the expert directory, so that the shards of a split DANCE run
    /// share them: takes the options of `distill`.
    Experts(Box<DistillArgs>),
    /// Datasets: inspect what a path or name loads as, or download the official files.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Run a study: a grid of methods × seeds × IPC × any option (STUDY.toml), each cell an ordinary distillation under
    /// the study's folder; finished cells are skipped and interrupted ones resume, so running it again finishes it. Then
    /// the table: per group the mean ± sd over seeds, and per pair (DM vs DM+HDD, …) the paired difference with its 95 %
    /// interval, as table.md, table.csv and table.json.
    ///
    /// Example STUDY.toml:
    ///   out = "studies/fmnist"
    ///   dataset = "/usr/share/datasets/fashion-mnist"
    ///   methods = ["dm", "dm+hdd"]
    ///   seeds = [1, 2, 3, 4, 5]
    ///   ipc = [10]
    ///   [grid]            # optional further axes: a run option's dotted path and its values
    ///   "distill.k" = [0.5, 1.0]
    ///   [run]             # what every run shares, as in a run configuration
    ///   eval_every = 300
    ///   [run.distill]
    ///   iterations = 300
    ///   width = 32
    ///   [run.eval]
    ///   epochs = 300
    ///   nets = 3
    Study {
        /// The study's TOML file.
        study: PathBuf,
        /// Run only these cells (indices from `--list`, comma separated): one Slurm array task each.
        #[arg(long, value_delimiter = ',')]
        cell: Option<Vec<usize>>,
        /// Only write the table from what has finished.
        #[arg(long)]
        table: bool,
        /// List the cells and how far each got, and stop.
        #[arg(long)]
        list: bool,
        /// Print a Slurm script that submits the cells as a job array and the table after them, and stop.
        #[arg(long)]
        emit_slurm: bool,
        /// Dataset cache directory [default: $HYPERDISTILL_CACHE, else the platform cache dir + hyperdistill].
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Write a report: one self-contained HTML page (opens offline) and its figures as PNG and SVG. Give a run folder
    /// (loss, per-class distance, accuracy, grids, Poincaré disk and PCA), a study (its TOML or folder: the table,
    /// accuracy per group, paired differences) or an `eval --json` file (accuracy per network and per class, confusion).
    Report {
        /// A run folder, a study's TOML or folder, or an `eval --json` file.
        input: PathBuf,
        /// Where the page and figures go [default: report/ in the run's or study's folder; NAME-report/ beside a JSON].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The grids shown, by iteration (comma separated) [default: up to five of those saved, evenly spread].
        #[arg(long, value_delimiter = ',')]
        grids: Option<Vec<usize>>,
        /// No Poincaré disk or PCA (they open the dataset and use the GPU).
        #[arg(long)]
        no_features: bool,
        /// Dataset cache directory [default: $HYPERDISTILL_CACHE, else the platform cache dir + hyperdistill].
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Measure speed: the adapter's matmul peak, each convolution kernel against it, distillation iterations and
    /// evaluation epochs for the standard configurations, with per-iteration counts and GPU memory.
    ///
    /// The defaults are the papers' sizes (width 128, IPC 1/10/50, batch_real 64/256), meant for real GPUs; on a
    /// software adapter pick a subset, e.g. `--width 32 --ipc 10 --batch-real 64 --test-images 2000`.
    Bench(BenchArgs),
}

/// `distill` flags that each set one configuration field, declared once: clap parses them, `apply` sets them (after
/// --ipc, --method, --sizes, --eval-protocol and --quick, so that they override what those set).
macro_rules! overrides {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty => $($path:ident).+;)*) => {
        #[derive(clap::Args)]
        struct Overrides {
            $($(#[doc = $doc])* #[arg(long)] $name: Option<$ty>,)*
        }
        impl Overrides {
            fn apply(&self, c: &mut RunConfig) {
                $(if let Some(v) = &self.$name { c.$($path).+ = v.clone().into(); })*
            }
        }
    };
}

overrides! {
    /// "embedded" (built-in Fashion-MNIST subset), a path, or a dataset name in the cache.
    dataset: String => dataset;
    /// Distillation iterations (0: evaluate the initialisation) [default: the method's published number].
    iterations: usize => distill.iterations;
    /// Real images per class per iteration.
    batch_real: usize => distill.batch_real;
    /// Learning rate of the synthetic pixels (SGD, momentum 0.5; DANCE's is in [0, 1] pixel units) [default: the
    /// method's published value for the IPC].
    lr_img: f32 => distill.lr_img;
    /// Seed of every random choice (initial images, networks, batches, augmentations), through one ChaCha generator.
    seed: u64 => distill.seed;
    /// HDD: geoopt's curvature parameter k > 0.
    k: f64 => distill.k;
    /// HDD: weight λ of the geodesic distance.
    lambda: f32 => distill.lambda;
    /// HDD: radius clamp of the exponential map, a number or "off".
    clamp: Clamp => distill.clamp;
    /// HDD: expmap or projx.
    map: LorentzMap => distill.map;
    /// real or noise.
    init: Init => distill.init;
    /// IDM: weight of the class-aware CE regulariser (times the net's running training accuracy in %).
    ce_weight: f32 => distill.idm.ce_weight;
    /// IDM: length of the queue of partly trained networks.
    net_num: usize => distill.idm.net_num;
    /// IDM: push a new random network every N iterations.
    net_generate_interval: usize => distill.idm.net_generate_interval;
    /// IDM: queue networks trained per iteration.
    fetch_net_num: usize => distill.idm.fetch_net_num;
    /// IDM: SGD steps per trained network per iteration.
    model_train_steps: usize => distill.idm.model_train_steps;
    /// IDM: real images per network training step.
    net_batch: usize => distill.idm.net_batch;
    /// DANCE: experts trained on the real data (each saved in --expert-dir and reused).
    experts: usize => distill.dance.experts;
    /// DANCE: the first N experts are sampled during distillation.
    num_premodel: usize => distill.dance.num_premodel;
    /// DANCE: training epochs of each expert.
    expert_epochs: usize => distill.dance.expert_epochs;
    /// DANCE: where experts are saved and reused [default: OUT/experts].
    expert_dir: String => distill.dance.expert_dir;
    /// Evaluate every N iterations (0: only at the end).
    eval_every: usize => eval_every;
    /// Networks per evaluation, mean ± std over them (0: no evaluation) [default: 5].
    eval_nets: usize => eval.nets;
    /// Network the evaluation trains: convnet (default), mlp, lenet, alexnet, vgg11 or resnet18 (the DC code's
    /// cross-architecture pool; VGG11 and ResNet18 with instance norm).
    eval_arch: Arch => eval.arch;
    /// Read the loss back, log it and check the run for divergence every N iterations [default: 10].
    log_every: usize => log_every;
    /// Save a checkpoint every N iterations (resume with --resume OUT; 0: only at the end).
    checkpoint_every: usize => checkpoint_every;
    /// Hyperbolic pruning: distill against only this fraction of each class's real images, those nearest the
    /// class's Lorentz centroid under fixed random ConvNet-3s (e.g. 0.2; default 1 = all).
    keep_real: f64 => keep_real;
    /// Random networks averaged for the pruning ranking.
    prune_nets: usize => prune_nets;
    /// Output directory.
    out: PathBuf => out;
}

/// --clamp: a number, or "off".
#[derive(Clone)]
struct Clamp(Option<f64>);

impl std::str::FromStr for Clamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Clamp(None)),
            v => v.parse().map(|c| Clamp(Some(c))).map_err(|_| format!("'{v}': a number or off")),
        }
    }
}

impl From<Clamp> for Option<f64> {
    fn from(c: Clamp) -> Self {
        c.0
    }
}

/// The sizes a run starts from, before the other flags.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Sizes {
    /// The authors' sizes (width 128, batch_real 256, the method's published iterations, 1000 epochs × 5 networks).
    Paper,
    /// Minutes on any adapter, software Vulkan included: width 32, batch_real 64, 200 iterations, evaluated with the
    /// quick protocol (300 epochs × 3 networks).
    Demo,
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
    /// Synthetic images per class.
    #[arg(long)]
    ipc: Option<usize>,
    /// dm, dm+hdd, idm, idm+hdd, dance or dance+hdd. Given on the command line it also sets that method's
    /// published k, λ, lr_img, iterations, batch_real and IDM/DANCE options for the IPC (method.md §1.7, §4.2),
    /// and DANCE's evaluation protocol for DANCE; other flags override them.
    #[arg(long)]
    method: Option<Method>,
    /// paper (the authors' sizes, as without this flag) or demo (a run of minutes anywhere: width 32, batch_real 64,
    /// 200 iterations, quick evaluation); other flags override them.
    #[arg(long, value_enum)]
    sizes: Option<Sizes>,
    /// Evaluation protocol: dm (the DM/IDM/HDD code's) or dance (DANCE's: MultiStepLR, CutMix, best accuracy).
    #[arg(long)]
    eval_protocol: Option<String>,
    /// Evaluate with 300 epochs × 3 networks (labelled quick in every output).
    #[arg(long)]
    quick: bool,
    /// ConvNet width (channels per conv layer), for distillation and evaluation.
    #[arg(long)]
    width: Option<usize>,
    /// DSA strategy, e.g. color_crop_cutout_flip_scale_rotate, or none (distillation and evaluation).
    #[arg(long)]
    dsa: Option<String>,
    /// HDD: weight each sample in its class centroid by w = τ/sinh τ (τ: geodesic distance from the origin / √k),
    /// the paper's hierarchical weighting; not in the authors' code, and without effect while the clamp is active.
    #[arg(long)]
    weighted_centroid: bool,
    /// IDM, DANCE: store plain images instead of 2×2 mosaics (no partition and expansion / multi-formation).
    #[arg(long)]
    no_mosaic: bool,
    /// Epochs per evaluation network [default: the protocol's]; giving it labels results quick.
    #[arg(long)]
    eval_epochs: Option<usize>,
    /// Also write one PNG per synthetic image under OUT/images/<class>/.
    #[arg(long)]
    export_images: bool,
    /// Distill only class shard I of N (0-based; classes I, I + N, …) into OUT/shard-I-of-N, for `hyperdistill merge`;
    /// "auto": the shard from the scheduler (a Slurm job array's SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or
    /// Kubernetes' JOB_COMPLETION_INDEX with HYPERDISTILL_SHARDS). A shard's images equal the unsplit run's, bit for bit.
    #[arg(long, value_name = "I/N|auto", conflicts_with = "resume")]
    shard: Option<String>,
    /// Write everything iterations ITERS used and produced (comma separated, e.g. 0,1,150: the network, the real
    /// batches, the DSA parameters, the images before and after, the features, the loss per class, the gradients,
    /// the momentum, HDD's points, centroids and distances) to OUT/trace/iter_T.safetensors, for an outside check
    /// such as benches/trace_check.py. DM and IDM, with or without HDD; the results are the same with or without it.
    #[arg(long, value_name = "ITERS", value_delimiter = ',')]
    trace: Option<Vec<usize>>,
    /// Distill only these classes (comma separated, e.g. 0,3,6): a shard of your own choosing.
    #[arg(long, value_delimiter = ',', conflicts_with = "shard")]
    classes: Option<Vec<usize>>,
    #[command(flatten)]
    set: Overrides,
    /// Dataset cache directory [default: $HYPERDISTILL_CACHE, else the platform cache dir + hyperdistill].
    #[arg(long)]
    cache: Option<PathBuf>,
}

impl DistillArgs {
    /// The run's configuration: the file (or the resumed run's), then the flags.
    fn resolve(&self) -> Result<RunConfig> {
        let mut c = match (&self.config, &self.resume) {
            (Some(p), _) => RunConfig::from_toml_file(p)?,
            (None, Some(dir)) => RunConfig::from_toml_file(&dir.join("config.toml"))?,
            (None, None) => RunConfig::default(),
        };
        // the method's published values (which depend on the IPC) first, so that every other flag overrides them
        if let Some(v) = self.ipc { c.distill.ipc = v; }
        if let Some(m) = self.method {
            c.distill.method = m;
            c.distill.apply_method_defaults();
            if m.dance() {
                c.eval = EvalConfig { width: c.eval.width, arch: c.eval.arch, ..EvalConfig::dance() };
            }
        }
        if self.sizes == Some(Sizes::Demo) {
            (c.distill.width, c.distill.batch_real, c.distill.iterations) = (32, 64, 200);
            c.eval = EvalConfig { width: 32, epochs: 300, nets: 3, quick: true, ..c.eval.clone() };
        }
        if let Some(p) = &self.eval_protocol {
            c.eval = match p.as_str() {
                "dm" => EvalConfig { width: c.eval.width, arch: c.eval.arch, ..Default::default() },
                "dance" => EvalConfig { width: c.eval.width, arch: c.eval.arch, ..EvalConfig::dance() },
                o => bail!("--eval-protocol {o}: use dm or dance"),
            };
        }
        if self.quick {
            c.eval = EvalConfig { epochs: 300, nets: 3, quick: true, ..c.eval.clone() };
        }
        self.set.apply(&mut c);
        if let Some(v) = self.width { (c.distill.width, c.eval.width) = (v, v); }
        if let Some(v) = &self.dsa { (c.distill.dsa, c.eval.dsa) = (v.clone(), v.clone()); }
        if self.weighted_centroid { c.distill.weighted_centroid = true; }
        if self.no_mosaic { (c.distill.idm.mosaic, c.distill.dance.mosaic) = (false, false); }
        if let Some(v) = self.eval_epochs { (c.eval.epochs, c.eval.quick) = (v, true); }
        if self.export_images { c.export_images = true; }
        if let Some(v) = &self.classes { c.distill.classes = v.clone(); }
        if let Some(v) = &self.trace { c.trace = v.clone(); }
        if let Some(spec) = &self.shard {
            let shard = Shard::parse(spec)?;
            c.shard = shard.to_string();
            c.out = c.out.join(shard.folder());
        }
        if let Some(dir) = &self.resume { c.out = dir.clone(); }
        Ok(c)
    }
}

#[derive(clap::Args)]
struct EvalArgs {
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
    eval_arch: Vec<Arch>,
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
    /// Train only networks I, I + N, … of the evaluation (0-based; "auto": from the scheduler, as `distill --shard`);
    /// write them with --json and join the parts with `hyperdistill merge`.
    #[arg(long, value_name = "I/N|auto", requires = "json")]
    shard: Option<String>,
    /// Also write the accuracies (per network, with everything the parts of a split evaluation must share) to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write everything training step STEP (counted from 0 over all epochs) of the first ConvNet-3 used and produced
    /// (parameters and momentum before and after, the batch, its DSA ops and parameters, logits, losses, gradients)
    /// to trace/eval_step_STEP.safetensors beside the set, for an outside check such as benches/trace_check.py. The
    /// accuracies are the same with or without it.
    #[arg(long, value_name = "STEP")]
    trace: Option<usize>,
}

impl EvalArgs {
    fn job(&self) -> Result<run::EvalJob> {
        let base = match self.protocol.as_str() {
            "dm" => EvalConfig::default(),
            "dance" => EvalConfig::dance(),
            o => bail!("--protocol {o}: use dm or dance"),
        };
        let mut eval = if self.quick { EvalConfig { epochs: 300, nets: 3, quick: true, ..base } } else { base };
        if let Some(v) = self.epochs { (eval.epochs, eval.quick) = (v, true); }
        if let Some(v) = self.nets { eval.nets = v; }
        if let Some(v) = self.width { eval.width = v; }
        // refused before anything is loaded
        eval.validate()?;
        let nets = self.shard.as_deref().map(Shard::parse).transpose()?.map(|s| s.nets(eval.nets));
        Ok(run::EvalJob {
            synset: self.synset.clone(),
            dataset: self.dataset.clone(),
            eval,
            archs: self.eval_arch.clone(),
            seed: self.seed,
            keep_syn: self.keep_syn,
            prune_nets: self.prune_nets,
            nets,
            trace: self.trace,
        })
    }
}

#[derive(clap::Args)]
struct BenchArgs {
    /// What to measure, comma separated: peak (dense matmul, every kernel variant), kernels (each conv kernel
    /// as a fraction of the peak), distill (iterations), eval (training epochs and the test pass), passes
    /// (whole-network forward and forward + backward), breakdown (one distillation iteration and one evaluation
    /// epoch timed kernel by kernel with GPU timestamps, where the adapter has them), autotune (the kernel autotuner
    /// from an empty table: every candidate's time per convolution pass and shape, the picks, the tuning cost, then
    /// iterations and epochs of each --eval-arch network with the rule's kernels against the picks, alternated).
    #[arg(long, default_value = "peak,kernels,distill,eval", value_delimiter = ',')]
    parts: Vec<bench::Part>,
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
    method: Vec<Method>,
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
    eval_arch: Vec<Arch>,
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
}

impl BenchArgs {
    fn options(&self) -> Result<SuiteOptions> {
        let s = self;
        if s.batch == 0 || s.width == 0 || s.runs == 0 || s.eval_batch == 0 || s.test_images == 0 {
            bail!("--batch, --width, --runs, --eval-batch and --test-images must be at least 1");
        }
        if s.ipc.contains(&0) || s.batch_real.contains(&0) {
            bail!("--ipc and --batch-real must be at least 1");
        }
        let shapes = s
            .shapes
            .iter()
            .map(|v| match v.trim() {
                "fmnist" | "mnist" => Ok((1, 28)),
                "cifar" | "svhn" => Ok((3, 32)),
                "tiny" => Ok((3, 64)),
                other => bail!("unknown shape '{other}': use fmnist, cifar or tiny"),
            })
            .collect::<Result<Vec<_>>>()?;
        let parts = if s.distill { vec![bench::Part::Distill] } else { s.parts.clone() };
        Ok(SuiteOptions {
            parts,
            shapes,
            width: s.width,
            ipcs: s.ipc.clone(),
            batch_reals: s.batch_real.clone(),
            methods: s.method.clone(),
            runs: s.runs,
            warmup: s.warmup,
            seed: s.seed,
            matmul: s.matmul,
            batch: s.batch,
            eval_epochs: s.eval_epochs,
            eval_batch: s.eval_batch,
            test_images: s.test_images,
            eval_archs: s.eval_arch.clone(),
        })
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
    let cache_or_default = |c: Option<PathBuf>| c.unwrap_or_else(fetch::default_cache_dir);
    let adapter = cli.adapter.clone();
    let open_gpu = || Gpu::select(adapter.as_deref());
    match command {
        Command::Gui { settings, dataset, cache } => gui(settings, dataset, cache_or_default(cache)),
        Command::Info { adapters: true, .. } => {
            for (i, a) in Gpu::adapters().iter().enumerate() {
                let info = a.get_info();
                println!("{i}: {} ({:?}, {:?}, driver {} {})", info.name, info.backend, info.device_type, info.driver, info.driver_info);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Info { seed, .. } => {
            let (report, ok) = hyperdistill::selfcheck::info_report(&open_gpu()?, seed)?;
            print!("{report}");
            if !ok {
                eprintln!("error: this adapter's results disagree with the CPU reference; please report it with the output above");
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { command: DataCommand::Info { dataset, cache } } => {
            let t = std::time::Instant::now();
            let ds = data::open(&dataset, &cache_or_default(cache))?;
            print!("{}", ds.summary(t.elapsed().as_secs_f64())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { command: DataCommand::Fetch { name, dir, mirror, connect_timeout, read_timeout } } => {
            let Some(k) = Known::parse(&name) else {
                bail!("unknown dataset '{name}': use one of {}", Known::ALL.map(Known::name).join(", "));
            };
            let mut t = fetch::Timeouts::default();
            if let Some(s) = connect_timeout { t.connect = std::time::Duration::from_secs(s); }
            if let Some(s) = read_timeout { t.read = std::time::Duration::from_secs(s); }
            let dest = fetch::fetch_with(k, &cache_or_default(dir), mirror.as_deref(), t, &mut |m| eprintln!("{m}"))?;
            println!("{} is in {}", k.name(), dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Distill(args) => {
            let cfg = args.resolve()?;
            let gpu = open_gpu()?;
            eprintln!("adapter: {}", gpu.describe());
            let start = if args.resume.is_some() { Start::Resume } else if args.overwrite { Start::Overwrite } else { Start::Fresh };
            let o = run::run(&gpu, &cfg, start, &cache_or_default(args.cache.clone()))?;
            if o.steps > 0 {
                println!("{:.3} s per iteration over {} iterations (distillation steps only)", o.seconds_per_iteration, o.steps);
            }
            if let Some(r) = &o.final_eval {
                println!("final test accuracy {:.2} ± {:.2} % ({} nets, {} epochs{})", 100.0 * r.mean, 100.0 * r.std, r.accuracies.len(), r.epochs + 1,
                    if r.quick { ", quick protocol" } else { "" });
            }
            println!("settings: {}", o.settings);
            println!("wrote {0}/synset.safetensors, {0}/synset.png, {0}/metrics.jsonl, {0}/config.toml, {0}/checkpoint.safetensors", o.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => {
            let job = args.job()?;
            // before any work: an evaluation's JSON (one part of a split evaluation) holds one network
            if args.json.is_some() && args.eval_arch.len() > 1 {
                bail!("--json takes one network of the pool (--eval-arch), not {}", args.eval_arch.len());
            }
            let gpu = open_gpu()?;
            let cache = cache_or_default(args.cache.clone());
            let results = run::evaluate_set(&gpu, &job, &cache, &mut |m| eprintln!("{m}"))?;
            if let (Some(path), Some(r)) = (&args.json, results.first()) {
                if results.len() > 1 {
                    bail!("--json takes one network of the pool (--eval-arch), not {}", results.len());
                }
                let part = run::EvalPart {
                    synset: job.synset.clone(),
                    synset_sha256: run::sha256_file(&job.synset)?,
                    dataset: job.dataset.clone().unwrap_or_default(),
                    arch: r.arch.name().to_string(),
                    seed: job.seed,
                    protocol: job.eval.clone(),
                    nets: r.nets.clone(),
                    accuracies: r.accuracies.clone(),
                    shard: args.shard.clone(),
                    classes: r.classes.clone(),
                    confusion: r.confusion.clone(),
                };
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                hyperdistill::export::atomic_write(path, serde_json::to_string_pretty(&part)?.as_bytes())?;
                eprintln!("wrote {}", path.display());
            }
            for r in &results {
                let (mean, std) = r.mean_std();
                let best = if job.eval.protocol == hyperdistill::eval::Protocol::Dance { ", best tested accuracy per net" } else { "" };
                let part = if r.nets.len() < job.eval.nets { format!(", networks {:?} of {} (a part: merge the parts)", r.nets, job.eval.nets) } else { String::new() };
                println!("{} test accuracy {:.2} ± {:.2} % over {} nets ({} protocol, {} passes{best}{}{part}): {:?}", r.arch.name(), 100.0 * mean, 100.0 * std,
                    r.accuracies.len(), args.protocol, job.eval.passes(), if job.eval.quick { ", quick" } else { "" }, r.accuracies);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { out, parts } => {
            match run::merge(&out, &parts)? {
                run::Merged::Set { classes, shards, iteration } => {
                    println!("merged {shards} shards into {} ({classes} classes, iteration {iteration}): synset.safetensors, synset.png, config.toml", out.display());
                }
                run::Merged::Eval { accuracies, mean, std, arch } => {
                    println!("{arch} test accuracy {:.2} ± {:.2} % over {} nets: {accuracies:?} (wrote {})", 100.0 * mean, 100.0 * std, accuracies.len(), out.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Experts(args) => {
            let cfg = args.resolve()?;
            if !cfg.distill.method.dance() {
                bail!("experts are DANCE's: give --method dance or dance+hdd (or a configuration with that method)");
            }
            let gpu = open_gpu()?;
            let ds = data::open(&cfg.dataset, &cache_or_default(args.cache.clone()))?;
            cfg.distill.validate(&ds)?;
            let experts = run::experts_for(&gpu, &cfg, &ds)?;
            println!("{} experts ready in {}", experts.len(), run::expert_dir(&cfg).display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Study { study: file, cell, table, list, emit_slurm, cache } => {
            use hyperdistill::study::{self, CellState, StudyConfig};
            let s = StudyConfig::from_toml_file(&file)?;
            let cells = s.cells()?;
            if emit_slurm {
                print!("{}", study::slurm_script(&file, &s)?);
                return Ok(ExitCode::SUCCESS);
            }
            if list {
                for (i, c) in cells.iter().enumerate() {
                    let state = match study::cell_state(c) {
                        CellState::Done => "done",
                        CellState::Interrupted => "interrupted (resumes)",
                        CellState::New => "not started",
                    };
                    println!("{i}: {} seed {}: {state} ({})", c.group, c.seed, c.cfg.out.display());
                }
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(bad) = cell.iter().flatten().find(|&&i| i >= cells.len()) {
                bail!("--cell {bad}: the study has {} cells (0–{})", cells.len(), cells.len().saturating_sub(1));
            }
            study::prepare(&file, &s)?;
            if !table {
                let gpu = open_gpu()?;
                eprintln!("adapter: {}", gpu.describe());
                study::run_cells(&gpu, &s, cell.as_deref(), &cache_or_default(cache), &mut |m| {
                    eprintln!("{m}");
                    let _ = study::note(&s, m);
                })?;
            }
            let t = study::table(&s)?;
            t.write(&s.out)?;
            print!("{}", t.markdown());
            println!("wrote {0}/table.md, {0}/table.csv, {0}/table.json", s.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { input, out, grids, no_features, cache } => {
            use hyperdistill::report::{self, Input, Options};
            let what = Input::detect(&input)?;
            let out = match out {
                Some(o) => o,
                None => what.default_out()?,
            };
            let gpu = if no_features || matches!(what, Input::Eval(_)) {
                None
            } else {
                match open_gpu() {
                    Ok(g) => Some(g),
                    Err(e) => {
                        eprintln!("note: no GPU adapter ({e:#}): the report has no disk or PCA");
                        None
                    }
                }
            };
            let w = report::report(gpu.as_ref(), &what, &out, &Options { grids, no_features, cache: cache_or_default(cache) })?;
            for n in &w.notes {
                eprintln!("note: {n}");
            }
            println!("wrote {} and {} figure files in {}", w.html.display(), w.files.len() - 1, out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            let o = args.options()?;
            let gpu = open_gpu()?;
            if args.profile {
                let (c, s) = o.shapes[0];
                println!("adapter {}; batch {}, width {}, {c}x{s}x{s}; median of {} runs, one submit each", gpu.describe(), o.batch, o.width, o.runs);
                print!("{}", bench::profile_text(&bench::profile(&gpu, c, s, o.width, o.batch, o.runs)?));
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("adapter: {}", gpu.describe());
            let bar = indicatif::ProgressBar::new(bench::suite_steps(&o)).with_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}  (ETA {eta})").expect("valid template"),
            );
            let r = bench::suite(&gpu, &o, &bar)?;
            bar.finish_and_clear();
            print!("{}", r.text(&o)?);
            if let Some(path) = &args.json {
                hyperdistill::export::atomic_write(path, serde_json::to_string_pretty(&r)?.as_bytes())?;
                println!("\nwrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(feature = "app")]
fn gui(settings: Option<PathBuf>, dataset: Option<String>, cache: PathBuf) -> Result<ExitCode> {
    use hyperdistill::app::{self, AppSettings};
    let mut s = match &settings {
        Some(p) => AppSettings::load(p)?,
        None => AppSettings::default(),
    };
    if let Some(d) = dataset {
        s.dataset = d;
    }
    s.validate()?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!("the app needs a display (DISPLAY or WAYLAND_DISPLAY); on a headless machine run it under xvfb-run");
    }
    app::platform::run_native(s, cache)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "app"))]
fn gui(_: Option<PathBuf>, _: Option<String>, _: PathBuf) -> Result<ExitCode> {
    bail!("this build has no app: rebuild with the default feature \"app\"")
}
