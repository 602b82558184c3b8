//! data::embedded: the Fashion-MNIST subset compiled into the binary (assets/fashion-mnist-subset:
//! 500 training and 100 test images per class, MIT licence of Zalando SE beside it). It is what the
//! CLI, the app and the web demo use when no dataset is given. Regenerate with assets/make_fashion_subset.py.

use super::idx;
use super::{DataError, Dataset, Known};

const TRAIN_IMAGES: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");

pub const LICENSE: &str = include_str!("../../assets/fashion-mnist-subset/LICENSE");
pub const SOURCE: &str = "embedded Fashion-MNIST subset (500 train + 100 test images per class; © Zalando SE, MIT)";

pub fn load() -> Result<Dataset, DataError> {
    // parse_split gunzips the streams itself
    let (train, rows, cols) = idx::parse_split("embedded:train-images", TRAIN_IMAGES, "embedded:train-labels", TRAIN_LABELS)?;
    let (test, _, _) = idx::parse_split("embedded:t10k-images", TEST_IMAGES, "embedded:t10k-labels", TEST_LABELS)?;
    let ds = idx::build(train, test, rows, cols, Some(Known::FashionMnist), "fashion-mnist", SOURCE);
    ds.validate()?;
    Ok(ds)
}
