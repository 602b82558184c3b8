//! web: the browser entry point (wasm32 only). `web/index.html` checks for WebGPU, then creates a `WebHandle` and
//! starts the app on a canvas; the page's file picker hands files over through it. Everything else the browser does
//! differently lives in `app::platform`.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use crate::app::platform::{self, PageEvent};
use crate::app::HyperApp;

thread_local! {
    static PENDING_FILES: RefCell<Vec<(String, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

#[wasm_bindgen]
pub struct WebHandle {
    runner: eframe::WebRunner,
}

#[wasm_bindgen]
impl WebHandle {
    #[allow(clippy::new_without_default)]
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        let _ = eframe::WebLogger::init(log::LevelFilter::Info);
        Self { runner: eframe::WebRunner::new() }
    }

    /// Start the app on `canvas` with the settings of the URL hash (or the browser defaults); with `autoplay`
    /// the distillation starts as soon as the dataset is open.
    pub async fn start(&self, canvas: web_sys::HtmlCanvasElement, autoplay: bool) -> Result<(), JsValue> {
        let (settings, note) = platform::settings_from_page();
        if let Some(n) = note {
            log::warn!("{n}");
            platform::report_value("settings-error", &n);
        }
        let options = eframe::WebOptions { wgpu_options: crate::app::wgpu_options(), ..Default::default() };
        self.runner
            .start(canvas, options, Box::new(move |cc| {
                platform::set_context(cc.egui_ctx.clone());
                let mut app = HyperApp::new(cc, settings, std::path::PathBuf::new())?;
                app.autoplay = autoplay;
                Ok(Box::new(app))
            }))
            .await
    }

    /// Add one file chosen in the page (call once per file, then `open_files`).
    pub fn add_file(&self, name: String, bytes: Vec<u8>) {
        PENDING_FILES.with(|f| f.borrow_mut().push((name, bytes)));
    }

    /// Open the files added since the last call as a dataset called `name` (IDX, CIFAR, SVHN, image
    /// folders in a .zip, …: the same detection as the CLI).
    pub fn open_files(&self, name: String) {
        let files = PENDING_FILES.with(|f| std::mem::take(&mut *f.borrow_mut()));
        crate::data::register_memory(&name, files);
        platform::send_event(PageEvent::OpenDataset(format!("memory:{name}")));
    }

    pub fn has_panicked(&self) -> bool {
        self.runner.has_panicked()
    }
}
