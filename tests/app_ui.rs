//! The desktop app, headless: egui_kittest drives the real eframe app on the wgpu renderer (lavapipe here), the
//! distillation runs a few iterations on the shared device, and the rendered pixels must show the synthetic grid
//! (pixel for pixel) and the Poincaré disk (its outline and every class's colour).
#![cfg(feature = "app")]

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use hyperdistill::app::{AppSettings, HyperApp, class_colour, egui, wgpu_options};

/// Keep a rendered frame: in the temporary folder, and in $HYPERDISTILL_SCREENSHOTS when set (docs/screenshots/ is
/// made this way: `HYPERDISTILL_SCREENSHOTS=docs/screenshots cargo test --test app_ui`).
fn screenshot(img: &image::RgbaImage, name: &str) {
    img.save(std::env::temp_dir().join(format!("hyperdistill-{name}"))).unwrap();
    if let Ok(dir) = std::env::var("HYPERDISTILL_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        img.save(std::path::Path::new(&dir).join(name)).unwrap();
    }
}

/// Small sizes that run in seconds on a software adapter.
fn small_settings(ipc: usize, view_real_per_class: usize) -> AppSettings {
    let mut s = AppSettings::default();
    s.distill.ipc = ipc;
    s.distill.width = 8;
    s.distill.batch_real = 8;
    s.view_real_per_class = view_real_per_class;
    s
}

/// Per class (of `classes`), the pixels of `rect` (points; `ppp` pixels per point) within `tol` of its colour, and
/// where they are as a fraction of the disk's radius about `rect`'s centre.
fn class_pixels(img: &image::RgbaImage, ppp: f32, rect: egui::Rect, classes: usize, tol: i32) -> (Vec<usize>, Vec<f32>) {
    let (c, r) = (rect.center(), rect.width() * 0.48);
    let colours: Vec<[u8; 4]> = (0..classes).map(|k| class_colour(k, classes).to_array()).collect();
    let (mut found, mut radii) = (vec![0usize; classes], vec![]);
    for y in (rect.min.y as u32)..(rect.max.y as u32) {
        for x in (rect.min.x as u32)..(rect.max.x as u32) {
            let p = img.get_pixel((x as f32 * ppp) as u32, (y as f32 * ppp) as u32).0;
            for (k, q) in colours.iter().enumerate() {
                if (0..3).all(|ch| (p[ch] as i32 - q[ch] as i32).abs() <= tol) {
                    found[k] += 1;
                    radii.push(((x as f32 - c.x).hypot(y as f32 - c.y) / r).min(1.0));
                }
            }
        }
    }
    (found, radii)
}

/// The app with settings `s` in a `w` × `h` window, once its session is open.
fn open_app(s: AppSettings, w: f32, h: f32) -> Harness<'static, HyperApp> {
    let cache = std::env::temp_dir().join("hd-app-test-cache");
    let mut h = Harness::builder()
        .with_size(egui::vec2(w, h))
        .wgpu_setup(wgpu_options().wgpu_setup)
        .build_eframe(move |cc| HyperApp::new(cc, s.clone(), cache.clone()).expect("app starts"));
    wait_until(&mut h, "the session", |a| a.latest.is_some());
    h
}

/// Play until iteration `n`, pause, let any iteration in flight land, and draw a settled frame.
fn run_iterations(h: &mut Harness<'_, HyperApp>, n: usize) {
    h.state_mut().set_running(true);
    wait_until(h, "the iterations", |a| a.latest.as_ref().is_some_and(|s| s.iteration >= n));
    h.state_mut().set_running(false);
    std::thread::sleep(Duration::from_millis(500));
    h.run_steps(3);
}

fn wait_until(h: &mut Harness<'_, HyperApp>, what: &str, cond: impl Fn(&HyperApp) -> bool) {
    let t = Instant::now();
    while !cond(h.state()) {
        assert!(h.state().error.is_none(), "app error: {:?}", h.state().error);
        assert!(t.elapsed() < Duration::from_secs(300), "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn app_distills_live_and_draws_grid_and_disk() {
    let mut h = open_app(small_settings(2, 6), 1400.0, 1000.0);
    run_iterations(&mut h, 3);
    // export: the shown set as safetensors + PNG, and the timeline as a GIF
    let out = std::env::temp_dir().join(format!("hd-app-export-{}", std::process::id()));
    h.state_mut().export_dir = out.display().to_string();
    h.state_mut().export_current();
    h.state_mut().export_gif();
    assert!(h.state().error.is_none(), "export: {:?}", h.state().error);
    let set = hyperdistill::export::read_safetensors(&out.join("synset.safetensors")).unwrap();
    assert_eq!((set.labels.len(), set.c, set.h, set.w), (20, 1, 28, 28));
    assert_eq!(set.images, *h.state().latest.as_ref().unwrap().syn.as_ref());
    assert!(image::open(out.join("synset.png")).is_ok());
    let gif = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(std::fs::File::open(out.join("evolution.gif")).unwrap())).unwrap();
    let frames = image::AnimationDecoder::into_frames(gif).count();
    assert_eq!(frames, h.state().timeline.len(), "one GIF frame per snapshot");

    let app = h.state();
    let it = app.latest.as_ref().unwrap().iteration;
    assert!(app.timeline.len() >= 4, "timeline holds {} snapshots after {it} iterations", app.timeline.len());
    let expected = app.synthetic_grid_image().unwrap();
    let grid = app.last_grid_rect.expect("grid drawn");
    let disk = app.last_disk_rect.expect("disk drawn");
    println!("disk panel at 1400×1000: {disk:?}");
    assert!(disk.max.y <= 1000.0 && disk.max.x <= 1400.0, "the disk is cut off by the window: {disk:?}");
    let img = h.render().expect("render");
    screenshot(&img, "app-default.png");
    let ppp = img.width() as f32 / 1400.0;
    let px = |x: f32, y: f32| *img.get_pixel((x * ppp) as u32, (y * ppp) as u32);

    // 1. the grid: sample the centre of every texel of the synthetic grid and compare with the expected image
    let (tw, th) = (expected.size[0], expected.size[1]);
    let (sx, sy) = (grid.width() / tw as f32, grid.height() / th as f32);
    let (mut worst, mut distinct) = (0i32, std::collections::BTreeSet::new());
    for ty in 0..th {
        for tx in 0..tw {
            let want = expected.pixels[ty * tw + tx].to_array();
            let got = px(grid.min.x + (tx as f32 + 0.5) * sx, grid.min.y + (ty as f32 + 0.5) * sy).0;
            for ch in 0..3 {
                worst = worst.max((want[ch] as i32 - got[ch] as i32).abs());
            }
            distinct.insert(got[0]);
        }
    }
    println!("grid {tw}×{th} texels at {sx:.2}× scale: max channel difference {worst}, {} grey levels", distinct.len());
    assert!(worst <= 2, "rendered grid differs from the synthetic images by {worst}");
    assert!(distinct.len() > 50, "grid looks flat: {} levels", distinct.len());

    // 2. the disk: its dark outline on the horizontal diameter, a white interior, and every class's colour
    let c = disk.center();
    let r = disk.width() * 0.48;
    let dark = (-4..=4).any(|d| px(c.x + r + d as f32 * 0.5, c.y).0[0] < 120);
    assert!(dark, "no disk outline at the right edge");
    let classes = 10;
    let (found, mut radii) = class_pixels(&img, ppp, disk, classes, 3);
    println!("disk pixels per class colour: {found:?}");
    assert!(found.iter().all(|&n| n >= 10), "some class is missing from the disk: {found:?}");
    // 3. the radial scale: by default (auto) the median real point is drawn at half the radius; the pixels of the
    // synthetic points and centroids spread over the disk
    radii.sort_by(f32::total_cmp);
    println!("class-coloured disk pixels: median radius {:.2} of the disk's", radii[radii.len() / 2]);
    let app = h.state();
    assert_eq!(app.radial, hyperdistill::view::RadialScale::Auto);
    let pic = app.disk_picture(0).expect("disk drawn");
    assert!(app.disk_picture(1).is_none(), "one disk outside compare mode");
    let mut real: Vec<f64> = pic.real.iter().map(|p| p[0].hypot(p[1])).collect();
    real.sort_by(f64::total_cmp);
    println!("auto radial scale s = {:.3}: median real point at ρ = {:.4}", pic.scale, real[real.len() / 2]);
    assert!((real[real.len() / 2] - hyperdistill::view::AUTO_RADIUS).abs() < 1e-9);

    // 5. the tour: open at the start, Next advances, the disk's step outlines the disk, Close ends it
    assert_eq!(h.state().tour, Some(0));
    h.get_by_label("Next").click();
    h.run_steps(3);
    assert_eq!(h.state().tour, Some(1));
    h.state_mut().tour = Some(3);
    h.run_steps(3);
    let img = h.render().expect("render");
    let orange = (disk.min.x as u32..disk.max.x as u32)
        .filter(|&x| {
            let p = img.get_pixel((x as f32 * ppp) as u32, ((disk.min.y - 6.5) * ppp) as u32).0;
            p[0] > 230 && (150..=190).contains(&p[1]) && p[2] < 40
        })
        .count();
    println!("tour step 4: {orange} orange pixels along the disk's top edge");
    assert!(orange > 100, "the tour does not outline the disk");
    h.get_by_label("Close").click();
    h.run_steps(3);
    assert_eq!(h.state().tour, None);

    // 4. one class: centred on class 3, the disk shows its points alone (no other class's colour), the histogram beside it
    h.state_mut().centre_on_class(Some(3));
    h.run_steps(3);
    let img = h.render().expect("render");
    let (found, _) = class_pixels(&img, ppp, disk, classes, 3);
    screenshot(&img, "app-one-class.png");
    println!("centred on class 3: disk pixels per class colour {found:?}");
    assert!(found[3] >= 10 && found.iter().enumerate().all(|(k, &n)| k == 3 || n == 0), "{found:?}");
}

#[test]
fn many_classes_show_ten_spread_and_the_picker_changes_them() {
    // a generic IDX set with 100 classes (4 training images each)
    let d = common::files::TempDir::new("app-100");
    common::files::write_idx_set(&d, "hundred", &common::files::labels_cycle(400, 100), &common::files::labels_cycle(100, 100), false);
    let mut s = small_settings(1, 2);
    s.dataset = d.path("hundred").display().to_string();
    s.distill.batch_real = 4;
    let mut h = open_app(s, 1280.0, 720.0);
    h.run_steps(3);
    let picked = vec![0, 11, 22, 33, 44, 55, 66, 77, 88, 99];
    assert_eq!(h.state().picked, picked, "ten classes spread over 0–99 by default");
    let disk = h.state().last_disk_rect.expect("disk drawn");
    println!("disk panel at 1280×720: {disk:?}");
    assert!(disk.max.y <= 720.0 && disk.max.x <= 1280.0 && disk.width() >= 200.0, "the disk does not fit 1280×720: {disk:?}");
    // from the pixels: the disk shows the picked classes' colours and no other class's
    let img = h.render().expect("render");
    screenshot(&img, "app-100-classes.png");
    let ppp = img.width() as f32 / 1280.0;
    let (found, _) = class_pixels(&img, ppp, disk, 100, 2);
    let shown: Vec<usize> = (0..100).filter(|&k| found[k] >= 10).collect();
    println!("100 classes: class colours found on the disk: {shown:?}");
    assert_eq!(shown, picked, "the disk draws the picked classes only");
    let grid = h.state().synthetic_grid_image().unwrap();
    assert_eq!(grid.size[1], 10 * 29 + 1, "the grid has one row per class shown");
    let ctx = h.ctx.clone();
    h.state_mut().set_picked(&ctx, vec![5, 2, 2, 100]);
    h.run_steps(3);
    assert_eq!(h.state().picked, vec![2, 5], "sorted, deduplicated, out-of-range dropped");
    assert_eq!(h.state().synthetic_grid_image().unwrap().size[1], 2 * 29 + 1);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
}

#[test]
fn compare_mode_runs_both_methods_from_the_same_start_and_draws_both() {
    let mut s = small_settings(2, 4);
    s.compare = true; // DM+HDD (the default) beside DM
    let mut h = open_app(s, 1600.0, 1000.0);
    {
        let first = h.state().latest.as_ref().unwrap();
        let twin = first.other.as_ref().expect("the twin's snapshot");
        assert_eq!(first.syn, twin.syn, "the same initial images");
    }
    run_iterations(&mut h, 3);
    let app = h.state();
    let snap = app.latest.as_ref().unwrap();
    let twin = snap.other.as_ref().expect("the twin's snapshot");
    assert_eq!(snap.iteration, twin.iteration, "both stepped together");
    let moved = snap.syn.iter().zip(twin.syn.iter()).filter(|(a, b)| a != b).count();
    println!("compare mode at iteration {}: {moved} of {} pixels differ between dm+hdd and dm", snap.iteration, snap.syn.len());
    assert!(moved > snap.syn.len() / 2, "HDD and DM moved the same images differently");
    assert!(app.twin_grid_drawn(), "the twin's grid is drawn");
    let (a, b) = (app.disk_picture(0).expect("first disk"), app.disk_picture(1).expect("second disk"));
    assert_eq!(a.real, b.real, "one view network, one set of real images: the same real points on both disks");
    assert_ne!(a.syn, b.syn, "the synthetic points differ");
    assert!(app.error.is_none(), "{:?}", app.error);
    let disk = app.last_disk_rect.expect("disk drawn");
    assert!(disk.max.y <= 1000.0 && disk.max.x <= 1600.0, "the disk is cut off at 1600×1000: {disk:?}");
    let img = h.render().expect("render");
    screenshot(&img, "app-compare.png");
}
