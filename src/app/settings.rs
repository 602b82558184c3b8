//! settings: everything that defines an app session, saved to and loaded from TOML so a setup can be shared.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::distill::DistillConfig;
use crate::validate::ConfigError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSettings {
    /// "embedded" (the built-in Fashion-MNIST subset), a path, or a dataset name in the cache.
    pub dataset: String,
    /// The distillation itself (method, IPC, k, λ, clamp, map, lr, batch_real, width, seed, DSA, init).
    /// `iterations` is ignored: the app runs until paused.
    pub distill: DistillConfig,
    /// Real images per class embedded for the disk and PCA views.
    pub view_real_per_class: usize,
    /// Keep a snapshot of the synthetic set every this many iterations (the timeline).
    pub snapshot_every: usize,
    /// Quick evaluation from the app: epochs and networks (labelled quick).
    pub eval_epochs: usize,
    pub eval_nets: usize,
    /// Compare mode: run the method's twin (with HDD if it has none, without if it has) beside it from the same seed —
    /// same initial images, networks, real batches and augmentations — and show both.
    pub compare: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        // Sized for a live picture on a laptop GPU (and still usable on software Vulkan): a narrower ConvNet
        // and fewer real images per class than the paper's 128 and 256.
        let distill = DistillConfig { width: 32, batch_real: 64, iterations: 0, ..Default::default() };
        AppSettings {
            dataset: "embedded".into(),
            distill,
            view_real_per_class: 20,
            snapshot_every: 1,
            eval_epochs: 300,
            eval_nets: 3,
            compare: false,
        }
    }
}

impl AppSettings {
    pub fn load(path: &Path) -> Result<AppSettings> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: not valid app settings", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::export::atomic_write(path, self.to_toml()?.as_bytes())
    }

    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    pub fn from_toml(text: &str) -> Result<AppSettings> {
        Ok(toml::from_str(text)?)
    }

    /// Checks that need no dataset (the rest happens when the session opens it).
    pub fn validate(&self) -> Result<(), ConfigError> {
        use crate::validate::at_least_one;
        at_least_one("view_real_per_class", self.view_real_per_class)?;
        at_least_one("snapshot_every", self.snapshot_every)?;
        at_least_one("eval_nets", self.eval_nets)?;
        if self.distill.method.dance() {
            // DANCE first trains its experts (20 × 60 epochs by default): minutes to hours before the first image moves,
            // with nothing to show meanwhile, and no disk in the browser to keep them on
            let m = self.distill.method.name();
            return Err(ConfigError::new(
                format!("method {m}"),
                format!(
                    "is not in the app: DANCE needs its experts trained first; run it with `hyperdistill distill --method {m}` \
                     (the app offers dm, dm+hdd, idm and idm+hdd)"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::Method;

    #[test]
    fn settings_round_trip_through_toml() {
        let dir = std::env::temp_dir().join(format!("hd-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = AppSettings::default();
        s.distill.seed = 42;
        s.distill.k = 2.4;
        s.distill.clamp = None;
        let p = dir.join("s.toml");
        s.save(&p).unwrap();
        assert_eq!(AppSettings::load(&p).unwrap(), s);
        std::fs::write(&p, "bogus_key = 1\n").unwrap();
        assert!(AppSettings::load(&p).is_err());
    }

    #[test]
    fn dance_settings_are_refused_with_the_cli_command() {
        let mut s = AppSettings::default();
        assert_eq!(s.validate(), Ok(()));
        for (method, name) in [(Method::Dance, "dance"), (Method::DanceHdd, "dance+hdd")] {
            s.distill.method = method;
            let err = s.validate().unwrap_err().to_string();
            println!("{err}");
            assert!(err.contains(&format!("hyperdistill distill --method {name}")), "{err}");
        }
        for method in [Method::Dm, Method::DmHdd, Method::Idm, Method::IdmHdd] {
            s.distill.method = method;
            assert_eq!(s.validate(), Ok(()), "{method:?}");
        }
    }
}
