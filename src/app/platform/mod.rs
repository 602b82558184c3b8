//! app::platform: what differs between the desktop and the browser, behind one set of names — the compute device,
//! the distillation worker (a thread, or a task on the page's event loop), saving files (a folder, or downloads),
//! the quick evaluation (a thread; the browser has none to spare), settings (a TOML file, or a link), and the page's
//! events and status element. The rest of the app calls only these and stays the same on both.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;
#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
pub use web::*;

/// Something the page asked of the app; the app takes these at the start of each frame (desktop: none).
pub enum PageEvent {
    /// Files were registered under this `data::open` spec ("memory:<name>"): open them.
    OpenDataset(String),
}
