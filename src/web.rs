//! web: the browser entry point (wasm32 only). `web/index.html` checks for WebGPU, then creates a `WebHandle`
//! and starts the same `HyperApp` on a canvas. This module also carries what only a page has: settings in the
//! URL hash (shareable links), files from the page's file picker, downloads, and a status element that people
//! (and the browser test) read.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use crate::app::{AppSettings, HyperApp};

/// Something the page asked of the app; the app takes these at the start of each frame.
pub enum PageEvent {
    /// Files were registered under this `data::open` spec ("memory:<name>"): open them.
    OpenDataset(String),
}

thread_local! {
    static EVENTS: RefCell<Vec<PageEvent>> = const { RefCell::new(Vec::new()) };
    static PENDING_FILES: RefCell<Vec<(String, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    /// The running app's egui context: a paused app draws no frames until something asks for one, so a page
    /// event must ask, or it would wait in `EVENTS` until the next mouse move.
    static APP_CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

/// Queue `ev` for the app and wake it to take it.
fn send(ev: PageEvent) {
    EVENTS.with(|e| e.borrow_mut().push(ev));
    APP_CTX.with(|c| if let Some(ctx) = c.borrow().as_ref() { ctx.request_repaint() });
}

pub fn take_events() -> Vec<PageEvent> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
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
        let (settings, note) = settings_from_page();
        if let Some(n) = note {
            log::warn!("{n}");
            report("settings-error", &n);
        }
        let options = eframe::WebOptions { wgpu_options: crate::app::wgpu_options(), ..Default::default() };
        self.runner
            .start(canvas, options, Box::new(move |cc| {
                APP_CTX.with(|c| *c.borrow_mut() = Some(cc.egui_ctx.clone()));
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
        send(PageEvent::OpenDataset(format!("memory:{name}")));
    }

    pub fn has_panicked(&self) -> bool {
        self.runner.has_panicked()
    }
}

/// Settings for the browser: the desktop defaults scaled down, since a browser without a GPU (SwiftShader)
/// runs the kernels on the CPU.
pub fn browser_defaults() -> AppSettings {
    let mut s = AppSettings::default();
    s.distill.ipc = 2;
    s.distill.width = 16;
    s.distill.batch_real = 32;
    s.view_real_per_class = 10;
    s
}

/// The settings in `#settings=<URI-encoded TOML>`, or the browser defaults (with a note saying why when the
/// hash could not be read).
fn settings_from_page() -> (AppSettings, Option<String>) {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    parse_hash(&hash)
}

pub fn parse_hash(hash: &str) -> (AppSettings, Option<String>) {
    let Some(enc) = hash.trim_start_matches('#').strip_prefix("settings=") else { return (browser_defaults(), None) };
    let text = match js_sys::decode_uri_component(enc) {
        Ok(t) => String::from(t),
        Err(_) => return (browser_defaults(), Some("the link's settings are not valid URI encoding; using the defaults".into())),
    };
    match AppSettings::from_toml(&text).and_then(|s| s.validate().map(|_| s).map_err(anyhow::Error::msg)) {
        Ok(s) => (s, None),
        Err(e) => (browser_defaults(), Some(format!("the link's settings could not be used ({e:#}); using the defaults"))),
    }
}

/// The link that reproduces `settings` (this page with them in the hash); also puts it in the address bar.
pub fn share_link(settings: &AppSettings) -> Option<String> {
    let text = settings.to_toml().ok()?;
    let hash = format!("#settings={}", String::from(js_sys::encode_uri_component(&text)));
    let w = web_sys::window()?;
    let loc = w.location();
    let _ = loc.set_hash(&hash);
    Some(format!("{}{}{}", loc.origin().ok()?, loc.pathname().ok()?, hash))
}

/// Offer `bytes` to the user as a download called `name`.
pub fn download(name: &str, bytes: &[u8]) -> Result<(), String> {
    let err = |e: JsValue| format!("{e:?}");
    let arr = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&arr);
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(err)?;
    let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = doc.create_element("a").map_err(err)?.dyn_into().map_err(|_| "not an anchor")?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Write `value` into the page's status element (`<div id="hd-status">`) as attribute `data-<key>`; the
/// browser test waits on these.
pub fn report(key: &str, value: &str) {
    if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("hd-status")) {
        let attr = format!("data-{key}");
        if el.get_attribute(&attr).as_deref() != Some(value) {
            let _ = el.set_attribute(&attr, value);
        }
    }
}
