//! app::platform, browser: a canvas on WebGPU, one thread, downloads, a link that carries the settings, and the page
//! around the app (its file picker's events, its status element).

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, TryRecvError};

use wasm_bindgen::prelude::*;

use super::PageEvent;
use crate::app::session::Cmd;
use crate::app::{AppSettings, HyperApp};
use crate::gpu::Gpu;

thread_local! {
    static EVENTS: RefCell<Vec<PageEvent>> = const { RefCell::new(Vec::new()) };
    /// The running app's egui context: a paused app draws no frames until something asks for one, so a page
    /// event must ask, or it would wait in `EVENTS` until the next mouse move.
    static APP_CTX: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

/// The app's context, for waking it when the page sends an event.
pub fn set_context(ctx: egui::Context) {
    APP_CTX.with(|c| *c.borrow_mut() = Some(ctx));
}

/// Queue `ev` for the app and wake it to take it.
pub fn send_event(ev: PageEvent) {
    EVENTS.with(|e| e.borrow_mut().push(ev));
    APP_CTX.with(|c| {
        if let Some(ctx) = c.borrow().as_ref() {
            ctx.request_repaint()
        }
    });
}

/// The page's events since the last frame.
pub fn take_page_events() -> Vec<PageEvent> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

/// Features the app's device asks for: none beyond WebGPU's defaults (subgroups would need an `enable subgroups;`
/// in WGSL that naga does not take yet).
pub fn device_features(_adapter: &wgpu::Adapter) -> wgpu::Features {
    wgpu::Features::empty()
}

/// The compute device: eframe's own (a browser's WebGPU adapter gives out one device only).
/// The autotuner is off unless the page's address asks (`?autotune=on` or `refresh`: measuring every candidate
/// delays the session's start by seconds, and a browser reports no device type to tell a CPU adapter by); its picks
/// live in the page's local storage under `hyperdistill-autotune-<adapter>-<hash>`.
pub fn compute_gpu(rs: &eframe::egui_wgpu::RenderState) -> anyhow::Result<Gpu> {
    let gpu = Gpu::from_device(rs.adapter.clone(), rs.device.clone(), rs.queue.clone());
    let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    let asked = search.trim_start_matches('?').split('&').find_map(|kv| kv.strip_prefix("autotune=")).unwrap_or("");
    match crate::gpu::Autotune::parse(asked) {
        Ok(Some(mode)) => gpu.kernels.set_mode(mode),
        Ok(None) => {}
        Err(e) => log::warn!("{e}; the autotuner stays off"),
    }
    if let Some(text) = storage().and_then(|s| s.get_item(&table_key(&gpu)).ok().flatten()) {
        gpu.kernels.load_text(&text);
    }
    if search.trim_start_matches('?').split('&').any(|kv| kv == "kernelcheck") {
        spawn_kernel_check(rs);
    }
    Ok(gpu)
}

/// `?kernelcheck`: every kernel the autotuner may pick against the CPU reference on this browser's GPU
/// (`selfcheck::conv_kernels`, on a `Gpu` of its own over the same device), beside the session; the verdict goes into
/// the status element as `data-kernel-check` ("ok: …" or "FAILED: …") and the console.
fn spawn_kernel_check(rs: &eframe::egui_wgpu::RenderState) {
    let (adapter, device, queue) = (rs.adapter.clone(), rs.device.clone(), rs.queue.clone());
    report_value("kernel-check", "running");
    wasm_bindgen_futures::spawn_local(async move {
        let gpu = Gpu::from_device(adapter, device, queue);
        let verdict = match crate::selfcheck::conv_kernels(&gpu, 0).await {
            Ok(checks) => {
                let (line, ok) = crate::selfcheck::kernel_summary(&checks);
                format!("{} {line}", if ok { "ok:" } else { "FAILED:" })
            }
            Err(e) => format!("FAILED: the kernel check could not run: {e}"),
        };
        log::info!("kernel check: {verdict}");
        report_value("kernel-check", &verdict);
    });
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn table_key(gpu: &Gpu) -> String {
    format!("hyperdistill-autotune-{}", crate::gpu::table_id(&gpu.info))
}

/// The autotuner measured new shapes: keep its table in the page's local storage (a full storage is a warning).
pub fn kernel_table_changed(gpu: &Gpu) {
    if let Some(s) = storage()
        && let Err(e) = s.set_item(&table_key(gpu), &gpu.kernels.to_text(&gpu.describe()))
    {
        log::warn!("could not keep the autotuner's picks in the page's storage: {e:?}");
    }
}

/// The worker is a task on the page's event loop; nothing to join.
pub struct Worker;

/// Run the future `make` builds as a task on the page's event loop.
pub fn spawn_worker<F, Fut>(make: F) -> anyhow::Result<Worker>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    wasm_bindgen_futures::spawn_local(make());
    Ok(Worker)
}

/// The worker's next command: the only thread must not block, so poll the channel and sleep on the event loop.
pub async fn next_cmd(rx: &Receiver<Cmd>) -> Option<Cmd> {
    loop {
        match rx.try_recv() {
            Ok(c) => return Some(c),
            Err(TryRecvError::Empty) => crate::gpu::sleep_ms(30).await,
            Err(TryRecvError::Disconnected) => return None,
        }
    }
}

/// Between two iterations: a browser draws only between tasks, so give it a turn.
pub async fn between_iterations() {
    crate::gpu::yield_now().await;
}

/// Offer an exported file as a download. Returns what it did.
pub fn save(_dir: &str, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    download(name, bytes).map_err(|e| anyhow::anyhow!("the browser refused the download: {e}"))?;
    Ok(format!("downloaded {name}"))
}

/// The quick evaluation trains networks for minutes: the desktop app and the CLI do it, the page's one thread not.
pub fn start_eval(app: &mut HyperApp, _ctx: &egui::Context) {
    app.error = Some("evaluation trains networks for minutes; it runs in the desktop app and the CLI, not in the browser".into());
}

/// Settings as a link with them in the URL hash.
pub fn settings_ui(app: &mut HyperApp, ui: &mut egui::Ui) {
    ui.strong("Share");
    if ui.button("Copy link with these settings").on_hover_text("the settings and seed go into the URL's #hash").clicked() {
        match share_link(&app.settings) {
            Some(link) => {
                ui.ctx().copy_text(link);
                app.status = "link copied (the address bar has it too)".into();
            }
            None => app.error = Some("could not build the link".into()),
        }
    }
    ui.label(egui::RichText::new("Your own IDX, CIFAR or zip files: use \"Open files\" above the app.").small().weak());
}

/// Where exports go: the browser's downloads.
pub fn export_target_ui(_app: &mut HyperApp, ui: &mut egui::Ui) {
    ui.strong("Export (downloads)");
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

/// The settings in the page's `#settings=<URI-encoded TOML>`, or the browser defaults (with a note saying why when
/// the hash could not be read).
pub fn settings_from_page() -> (AppSettings, Option<String>) {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    parse_hash(&hash)
}

pub fn parse_hash(hash: &str) -> (AppSettings, Option<String>) {
    let Some(enc) = hash.trim_start_matches('#').strip_prefix("settings=") else { return (browser_defaults(), None) };
    let text = match js_sys::decode_uri_component(enc) {
        Ok(t) => String::from(t),
        Err(_) => return (browser_defaults(), Some("the link's settings are not valid URI encoding; using the defaults".into())),
    };
    match AppSettings::from_toml(&text).and_then(|s| s.validate().map(|_| s).map_err(anyhow::Error::from)) {
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
pub fn report_value(key: &str, value: &str) {
    if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("hd-status")) {
        let attr = format!("data-{key}");
        if el.get_attribute(&attr).as_deref() != Some(value) {
            let _ = el.set_attribute(&attr, value);
        }
    }
}

/// Mirror the run's state into the page's status element (people see it; the browser test waits on it).
pub fn report(app: &HyperApp, ctx: &egui::Context) {
    let r = report_value;
    r("frames", &app.frames.to_string());
    r("iteration", &app.latest.as_ref().map_or(-1, |s| s.iteration as i64).to_string());
    r("running", &app.running.to_string());
    r("it-per-s", &app.it_per_s.map_or(String::new(), |v| format!("{v:.3}")));
    r("frame-ms", &app.frame_seconds.map_or(String::new(), |f| format!("{:.1}", f * 1000.0)));
    r("step-s", &app.latest.as_ref().and_then(|s| s.step_seconds).map_or(String::new(), |t| format!("{t:.3}")));
    r("loss", &app.latest.as_ref().and_then(|s| s.loss.as_ref()).map_or(String::new(), |l| format!("{:.4}", l.0)));
    r("dataset", &app.info.as_ref().map_or(String::new(), |i| format!("{} ({} train images)", i.dataset.name, i.dataset.train.len())));
    r("adapter", &app.info.as_ref().map_or(String::new(), |i| i.adapter.clone()));
    r("kernels", &app.info.as_ref().map_or(String::new(), |i| i.kernels.clone()));
    r("settings", &app.info.as_ref().map_or(String::new(), |i| {
        let d = &i.settings.distill;
        format!("{} ipc={} width={} batch_real={} seed={}", d.method.name(), d.ipc, d.width, d.batch_real, d.seed)
    }));
    r("disk-points", &app.disk[0].as_ref().map_or(0, |(_, p)| p.real.len() + p.syn.len()).to_string());
    // where the real points are drawn, as a fraction of the disk's radius (the auto scale puts their median at ½)
    r("disk-median-radius", &app.disk[0].as_ref().map_or(String::new(), |(_, p)| {
        let mut r: Vec<f64> = p.real.iter().map(|q| q[0].hypot(q[1])).collect();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).map_or(String::new(), |m| format!("{m:.4}"))
    }));
    let rect = |v: Option<egui::Rect>| v.map_or(String::new(), |r| format!("{},{},{},{}", r.min.x, r.min.y, r.max.x, r.max.y));
    r("disk-rect", &rect(app.last_disk_rect));
    r("disks", &app.disks_drawn.to_string());
    r("syn-point", &app.last_syn_point.map_or(String::new(), |p| format!("{},{}", p.x, p.y)));
    r("centre", &format!("{:?}", app.centre));
    r("picked", &app.picked.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","));
    r("grid-rect", &rect(app.last_grid_rect));
    r("pixels-per-point", &ctx.pixels_per_point().to_string());
    r("error", app.error.as_deref().unwrap_or(""));
}
