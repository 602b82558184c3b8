//! app::exporting: the shown synthetic set (safetensors + PNG grid) and the timeline as an animated GIF, written to
//! the export folder or, in a browser, offered as downloads (`platform::save`).

use std::sync::Arc;

use super::grids::grid_rgba;
use super::session::SessionInfo;
use super::{platform, HyperApp};
use crate::export::{self, SynSet};

impl HyperApp {
    pub fn export_current(&mut self) {
        let (Some(info), Some((iteration, syn))) = (self.info.clone(), self.shown()) else { return };
        let result = (|| -> anyhow::Result<String> {
            let ds = &info.dataset;
            let labels = (0..ds.classes.len()).flat_map(|c| std::iter::repeat_n(c as u32, info.settings.distill.ipc)).collect();
            let meta = info.settings.distill.metadata(&info.settings.dataset, ds, info.adapter.clone(), iteration, info.settings.to_toml().unwrap_or_default());
            let set = SynSet { images: syn.as_ref().clone(), labels, c: ds.channels, h: ds.height, w: ds.width, meta };
            let a = platform::save(&self.export_dir, "synset.safetensors", &export::safetensors_bytes(&set)?)?;
            let b = platform::save(&self.export_dir, "synset.png", &export::grid_png_bytes(&set, ds.classes.len(), info.settings.distill.ipc, &ds.mean, &ds.std)?)?;
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
        match gif_bytes(&info, &frames).and_then(|b| platform::save(&self.export_dir, "evolution.gif", &b)) {
            Ok(m) => self.status = format!("{m} ({} frames)", frames.len()),
            Err(e) => self.error = Some(format!("GIF export failed: {e:#}")),
        }
    }
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
            // an export holds every class, whichever are shown
            let all: Vec<usize> = (0..info.dataset.classes.len()).collect();
            let img = grid_rgba(info, px, info.settings.distill.ipc, &all);
            let rgba: Vec<u8> = img.pixels.iter().flat_map(|p| p.to_array()).collect();
            let buf = image::RgbaImage::from_raw(img.size[0] as u32, img.size[1] as u32, rgba)
                .ok_or_else(|| anyhow::anyhow!("internal: grid image of the wrong size"))?;
            let buf = image::imageops::resize(&buf, buf.width() * 2, buf.height() * 2, image::imageops::FilterType::Nearest);
            enc.encode_frame(image::Frame::from_parts(buf, 0, 0, image::Delay::from_numer_denom_ms(120, 1)))?;
        }
    }
    Ok(bytes)
}
