//! experts: DANCE's pre-trained ConvNet-3s (method.md §4.2.1). Each expert is a ConvNet-3 trained on the real
//! training set with DANCE's training recipe (SGD 0.01 / 0.9 / 5e-4, lr × 0.2 at 2/3 and 5/6 of the epochs,
//! per-sample DSA and CutMix: `eval`'s DANCE protocol), keeping its initial and final weights. DANCE's middle
//! encoder is θ = λ·θ_init + (1 − λ)·θ_final. Experts are saved as safetensors and reused when the recorded
//! dataset, width, epochs, batch and seed match.

use std::collections::BTreeMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use crate::data::Dataset;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::Gpu;
use crate::nn::convnet::ConvNetParams;
#[cfg(not(target_arch = "wasm32"))]
use crate::nn::convnet::ConvNetConfig;
#[cfg(not(target_arch = "wasm32"))]
use crate::rng;

/// One expert: its weights before and after training.
#[derive(Clone, Debug, PartialEq)]
pub struct Expert {
    pub init: ConvNetParams,
    pub fin: ConvNetParams,
}

/// How experts are trained (DANCE's defaults: 20 experts, 60 epochs; the batch is not given by the spec, 128 here).
#[derive(Clone, Debug, PartialEq)]
pub struct ExpertRecipe {
    pub width: usize,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
}

impl ExpertRecipe {
    /// The seed of expert `i` (each expert its own initialisation, shuffles and augmentations).
    pub fn expert_seed(&self, i: usize) -> u64 {
        self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1 + i as u64)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn eval_config(&self) -> crate::eval::EvalConfig {
        crate::eval::EvalConfig { epochs: self.epochs, batch: self.batch, width: self.width, nets: 1, ..crate::eval::EvalConfig::dance() }
    }

    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    fn meta(&self, ds: &Dataset, i: usize) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("dataset".to_string(), ds.name.clone()),
            ("train_images".to_string(), ds.train.len().to_string()),
            ("width".to_string(), self.width.to_string()),
            ("epochs".to_string(), self.epochs.to_string()),
            ("batch".to_string(), self.batch.to_string()),
            ("seed".to_string(), self.expert_seed(i).to_string()),
        ])
    }
}

impl Expert {
    /// The interpolated encoder λ·θ_init + (1 − λ)·θ_final.
    pub fn interpolate(&self, lambda: f32) -> ConvNetParams {
        let tensors = self
            .init
            .tensors
            .iter()
            .zip(&self.fin.tensors)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| lambda * x + (1.0 - lambda) * y).collect())
            .collect();
        ConvNetParams { cfg: self.init.cfg, tensors }
    }
}

/// Train expert `i` on the whole real training split.
#[cfg(not(target_arch = "wasm32"))]
pub fn train(gpu: &Gpu, ds: &Dataset, recipe: &ExpertRecipe, i: usize, on_epoch: &mut dyn FnMut(usize)) -> Result<Expert, anyhow::Error> {
    let seed = recipe.expert_seed(i);
    let cfg = ConvNetConfig::new(ds.shape(), recipe.width, ds.classes.len())?;
    // eval::train draws its initial weights from this stream first
    let init = ConvNetParams::init(&cfg, &mut rng::stream(seed, "eval-net"));
    let all: Vec<usize> = (0..ds.train.len()).collect();
    let images = ds.normalized(&ds.train, &all);
    let net = crate::eval::train(gpu, ds, &images, &ds.train.labels, &recipe.eval_config(), seed, on_epoch)?;
    let parts: Vec<(&wgpu::Buffer, usize)> = net.params().iter().zip(cfg.tensor_lens()).collect();
    let fin = ConvNetParams { cfg, tensors: gpu.read_many(&parts)? };
    Ok(Expert { init, fin })
}

#[cfg(not(target_arch = "wasm32"))]
fn save(path: &Path, e: &Expert, meta: &BTreeMap<String, String>) -> Result<(), anyhow::Error> {
    use safetensors::tensor::Dtype;
    let mut tensors = vec![];
    for (tag, p) in [("init", &e.init), ("final", &e.fin)] {
        for (t, v) in p.tensors.iter().enumerate() {
            tensors.push((format!("{tag}.{t}"), v));
        }
    }
    let list: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, v)| (n.as_str(), Dtype::F32, vec![v.len()], bytemuck::cast_slice(v.as_slice()).to_vec())).collect();
    crate::export::atomic_write(path, &crate::export::to_safetensors_bytes(&list, meta)?)
}

/// The expert stored at `path` if it was trained with exactly this recipe on this dataset, else None.
#[cfg(not(target_arch = "wasm32"))]
fn load(path: &Path, cfg: &ConvNetConfig, meta: &BTreeMap<String, String>) -> Option<Expert> {
    let bytes = std::fs::read(path).ok()?;
    let (_, m) = safetensors::SafeTensors::read_metadata(&bytes).ok()?;
    if m.metadata().as_ref()?.iter().collect::<BTreeMap<_, _>>() != meta.iter().collect::<BTreeMap<_, _>>() {
        return None;
    }
    let st = safetensors::SafeTensors::deserialize(&bytes).ok()?;
    let lens = cfg.tensor_lens();
    let read = |tag: &str| -> Option<ConvNetParams> {
        let mut tensors = vec![];
        for (t, &l) in lens.iter().enumerate() {
            let data: Vec<f32> = st.tensor(&format!("{tag}.{t}")).ok()?.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if data.len() != l {
                return None;
            }
            tensors.push(data);
        }
        Some(ConvNetParams { cfg: *cfg, tensors })
    };
    Some(Expert { init: read("init")?, fin: read("final")? })
}

/// `count` experts: those already in `dir` with this recipe are loaded, the others trained and saved there
/// (`dir` None: trained and kept in memory only). `progress(i, epoch)` reports training.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_or_train(
    gpu: &Gpu,
    ds: &Dataset,
    dir: Option<&Path>,
    count: usize,
    recipe: &ExpertRecipe,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Expert>, usize), anyhow::Error> {
    let cfg = ConvNetConfig::new(ds.shape(), recipe.width, ds.classes.len())?;
    if let Some(d) = dir {
        std::fs::create_dir_all(d).map_err(|e| anyhow::anyhow!("creating {}: {e}", d.display()))?;
    }
    let mut out = vec![];
    let mut trained = 0;
    for i in 0..count {
        let meta = recipe.meta(ds, i);
        let path = dir.map(|d| d.join(format!("expert{i:02}.safetensors")));
        if let Some(e) = path.as_deref().and_then(|p| load(p, &cfg, &meta)) {
            out.push(e);
            continue;
        }
        let e = train(gpu, ds, recipe, i, &mut |ep| progress(i, ep))?;
        trained += 1;
        if let Some(p) = &path {
            save(p, &e, &meta)?;
        }
        out.push(e);
    }
    Ok((out, trained))
}
