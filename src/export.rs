//! export: synthetic sets to files other tools read — safetensors (`images` [N,C,H,W] f32 in the
//! normalised space, `labels` [N] i64, string metadata), a PNG grid (rows = classes, columns = images per
//! class) — and back. Every file is written to a temporary name and renamed, so a crash never leaves a
//! half-written file in place.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};

#[derive(Clone, Debug, PartialEq)]
pub struct SynSet {
    /// [n, c, h, w], normalised space
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// String metadata, in key order (so the same set always gives the same file bytes).
    pub meta: BTreeMap<String, String>,
}

impl SynSet {
    /// Channels × height × width of one image.
    pub fn shape(&self) -> crate::shapes::ImageShape {
        crate::shapes::ImageShape::new(self.c, self.h, self.w)
    }
}

/// Write `bytes` to `path` through `path.tmp` + rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |f| f.write_all(bytes))
}

/// Write `path` through `path.tmp` + rename, the content from `write`; on any failure (a full disk, say) the
/// temporary file is removed and `path` keeps what it held.
pub fn atomic_write_with(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let written = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        write(&mut f).with_context(|| format!("writing {}", tmp.display()))?;
        // on disk before the rename, so a crash cannot leave a renamed but empty file
        f.sync_all().with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A safetensors file of `tensors` with `meta` as its `__metadata__`, byte for byte the same for the same inputs: the
/// crate writes metadata from a `HashMap` (in a random order), so it serialises the tensors alone and the metadata is
/// spliced into its header in key order.
pub fn to_safetensors_bytes(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, dt, shape, bytes)| Ok((name.to_string(), TensorView::new(*dt, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let plain = safetensors::serialize(views, None)?;
    if meta.is_empty() {
        return Ok(plain);
    }
    let n = u64::from_le_bytes(plain[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&plain[8..8 + n])?.trim_end();
    let rest = header.strip_prefix('{').context("safetensors header is not a JSON object")?.trim_start();
    let sep = if rest.starts_with('}') { "" } else { "," };
    let mut head = format!("{{\"__metadata__\":{}{sep}{rest}", serde_json::to_string(meta)?).into_bytes();
    // the format pads the header with spaces so that the data starts 8-byte aligned
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + head.len() + plain.len() - 8 - n);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&plain[8 + n..]);
    Ok(out)
}

pub fn write_safetensors(path: &Path, set: &SynSet) -> Result<()> {
    atomic_write(path, &safetensors_bytes(set)?)
}

/// The safetensors file of `set` as bytes (the browser build offers them as a download).
pub fn safetensors_bytes(set: &SynSet) -> Result<Vec<u8>> {
    let n = set.labels.len();
    let labels: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    let bytes = to_safetensors_bytes(
        &[
            ("images", Dtype::F32, vec![n, set.c, set.h, set.w], bytemuck::cast_slice(&set.images).to_vec()),
            ("labels", Dtype::I64, vec![n], bytemuck::cast_slice(&labels).to_vec()),
        ],
        &set.meta,
    )?;
    Ok(bytes)
}

pub fn read_safetensors(path: &Path) -> Result<SynSet> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let images = st.tensor("images").with_context(|| format!("{}: no 'images' tensor", path.display()))?;
    let labels = st.tensor("labels").with_context(|| format!("{}: no 'labels' tensor", path.display()))?;
    let shape = images.shape().to_vec();
    if images.dtype() != Dtype::F32 || shape.len() != 4 {
        bail!("{}: 'images' must be f32 [N, C, H, W], found {:?} {:?}", path.display(), images.dtype(), shape);
    }
    if labels.dtype() != Dtype::I64 || labels.shape() != [shape[0]] {
        bail!("{}: 'labels' must be i64 [{}], found {:?} {:?}", path.display(), shape[0], labels.dtype(), labels.shape());
    }
    let imgs: Vec<f32> = images.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let mut labs = vec![];
    for b in labels.data().chunks_exact(8) {
        let v = i64::from_le_bytes(b.try_into().expect("8 bytes"));
        if v < 0 || v > u32::MAX as i64 {
            bail!("{}: label {v} out of range", path.display());
        }
        labs.push(v as u32);
    }
    Ok(SynSet { images: imgs, labels: labs, c: shape[1], h: shape[2], w: shape[3], meta: metadata.metadata().clone().unwrap_or_default().into_iter().collect() })
}

/// Pixels for display: denormalise (x·std + mean), clip to μ ± 2.5σ of the whole set, map to [0, 255].
pub fn display_pixels(images: &[f32], c: usize, plane: usize, mean: &[f32], std: &[f32]) -> Vec<u8> {
    let denorm: Vec<f32> = images.iter().enumerate().map(|(i, &v)| {
        let ch = (i / plane) % c;
        v * std[ch] + mean[ch]
    }).collect();
    let n = denorm.len().max(1) as f64;
    let mu = denorm.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (denorm.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / n).sqrt().max(1e-8);
    let (lo, hi) = (mu - 2.5 * sd, mu + 2.5 * sd);
    denorm.iter().map(|&v| (((v as f64 - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}

/// The files an exported set is made of, as (file name, bytes): `synset.safetensors` and its grid `synset.png`
/// (one row per class, `per_class` images per row). The CLI writes them into a run's folder, the app into its
/// export folder (or, in a browser, as downloads).
pub fn set_files(set: &SynSet, classes: usize, per_class: usize, mean: &[f32], std: &[f32]) -> Result<[(&'static str, Vec<u8>); 2]> {
    Ok([("synset.safetensors", safetensors_bytes(set)?), ("synset.png", grid_png_bytes(set, classes, per_class, mean, std)?)])
}

/// The grid PNG as bytes.
pub fn grid_png_bytes(set: &SynSet, classes: usize, per_class: usize, mean: &[f32], std: &[f32]) -> Result<Vec<u8>> {
    let (c, h, w) = (set.c, set.h, set.w);
    let px = display_pixels(&set.images, c, h * w, mean, std);
    let (gw, gh) = ((w + 1) * per_class + 1, (h + 1) * classes + 1);
    let mut img = image::RgbImage::from_pixel(gw as u32, gh as u32, image::Rgb([255, 255, 255]));
    for (k, &label) in set.labels.iter().enumerate() {
        let row = label as usize;
        let col = set.labels[..k].iter().filter(|&&l| l == label).count();
        if row >= classes || col >= per_class {
            continue;
        }
        for y in 0..h {
            for x in 0..w {
                let at = |ch: usize| px[((k * c + ch.min(c - 1)) * h + y) * w + x];
                img.put_pixel((1 + col * (w + 1) + x) as u32, (1 + row * (h + 1) + y) as u32, image::Rgb([at(0), at(1), at(2)]));
            }
        }
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// One PNG per synthetic image: `dir/<class index>_<class name>/<k>.png` (same display rule as the grid).
pub fn write_image_folder(dir: &Path, set: &SynSet, class_names: &[String], mean: &[f32], std: &[f32]) -> Result<()> {
    let (c, h, w) = (set.c, set.h, set.w);
    let px = display_pixels(&set.images, c, h * w, mean, std);
    let mut counts = vec![0usize; class_names.len()];
    for (k, &label) in set.labels.iter().enumerate() {
        let l = label as usize;
        let name = class_names.get(l).map(String::as_str).unwrap_or("class");
        let safe: String = name.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' { ch } else { '_' }).collect();
        let sub = dir.join(format!("{l:03}_{safe}"));
        std::fs::create_dir_all(&sub).with_context(|| format!("creating {}", sub.display()))?;
        let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let at = |ch: usize| px[((k * c + ch.min(c - 1)) * h + y as usize) * w + x as usize];
            image::Rgb([at(0), at(1), at(2)])
        });
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, image::ImageFormat::Png)?;
        let idx = counts.get(l).copied().unwrap_or(0);
        if l < counts.len() {
            counts[l] += 1;
        }
        atomic_write(&sub.join(format!("{idx:04}.png")), &bytes.into_inner())?;
    }
    Ok(())
}
