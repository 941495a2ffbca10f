//! Worker side: receives requests, runs `model-core` on the chosen burn device, answers.

use crate::bridge::{decode, encode};
use crate::browser_image::decode_file;
use crate::last_decoded::LastDecoded;
use crate::protocol::{CellResult, ImageFindings, Request, Response, AGREEMENT_TOLERANCE};
use crate::share::{part_of, SharedCell, SharedCells};
use burn::prelude::*;
use model_core::detect::DetectOptions;
use model_core::diagnosis::Diagnosis;
use model_core::engine::CellClassifier;
use model_core::preprocess::{CellCrop, SOURCE_SIZE};
use model_core::unet::{condition, DenoiserConfig};
use model_core::weights::{ModelFiles, MODEL_STEM};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// The compute device chosen for this worker.
#[derive(Clone)]
pub struct Compute {
    /// burn device (flex CPU or wgpu/WebGPU).
    pub device: Device,
    /// `"webgpu"` or `"cpu"`.
    pub backend: &'static str,
}

thread_local! {
    static COMPUTE: RefCell<Option<Compute>> = const { RefCell::new(None) };
    static GPU: RefCell<Option<Device>> = const { RefCell::new(None) };
    static FILES: RefCell<Option<ModelFiles>> = const { RefCell::new(None) };
    static CLASSIFIER: RefCell<Option<(CellClassifier, &'static str)>> = const { RefCell::new(None) };
    /// Images whose analysis (running or queued here) the page cancelled.
    static CANCELLED: RefCell<HashSet<u32>> = RefCell::new(HashSet::new());
    /// Images with an analysis running or queued here, in arrival order.
    static ACTIVE: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static GPU_INITIALISING: Cell<bool> = const { Cell::new(false) };
    /// A task is fetching or building the classifier.
    static MODEL_LOADING: Cell<bool> = const { Cell::new(false) };
    /// Analyses run one at a time, in request order.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// The page's answers to this worker's offers to share an image's cells: image id to parts.
    static PLANS: RefCell<HashMap<u32, usize>> = RefCell::new(HashMap::new());
    /// The image the reviewer last marked a missed cell on, decoded.
    static MARKED: RefCell<LastDecoded<image::RgbImage>> = const { RefCell::new(LastDecoded::new()) };
}

/// Cells classified together: small enough that the first diagnosis arrives quickly.
const CELLS_PER_BATCH: usize = 4;

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Post a response with optional bytes.
pub fn reply(response: &Response, bytes: Option<&[u8]>) {
    let json = serde_json::to_string(response).unwrap_or_default();
    let (msg, transfer) = encode(&json, bytes);
    if let Err(e) = scope().post_message_with_transfer(&msg, &transfer) {
        web_sys::console::error_1(&e);
    }
}

/// Whether the browser offers a WebGPU adapter (asks for one, as burn would).
pub async fn webgpu_adapter() -> Option<String> {
    let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gpu = js_sys::Reflect::get(&nav, &"gpu".into()).ok()?;
    if gpu.is_undefined() || gpu.is_null() {
        return None;
    }
    let request = js_sys::Reflect::get(&gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = js_sys::Reflect::get(&adapter, &"info".into()).ok();
    let describe = |k: &str| {
        info.as_ref()
            .and_then(|i| js_sys::Reflect::get(i, &k.into()).ok())
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let text = format!(
        "{} {} {}",
        describe("vendor"),
        describe("architecture"),
        describe("description")
    );
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The WebGPU device, initialised once: concurrent callers wait for the first one (burn's
/// runtime can be registered only once).
async fn gpu_device() -> Result<Device, String> {
    // The device, or `None` once no other caller is initialising it.
    let ready = wait_for(None, || match GPU.with(|g| g.borrow().clone()) {
        Some(d) => Some(Some(d)),
        None if GPU_INITIALISING.with(|g| g.get()) => None,
        None => Some(None),
    })
    .await
    .flatten();
    if let Some(d) = ready {
        return Ok(d);
    }
    GPU_INITIALISING.with(|g| g.set(true));
    let result = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| format!("WebGPU initialisation failed: {e}"));
    GPU_INITIALISING.with(|g| g.set(false));
    let d = result?;
    GPU.with(|g| *g.borrow_mut() = Some(d.clone()));
    Ok(d)
}

async fn init(prefer_gpu: bool) -> Response {
    let adapter = webgpu_adapter().await;
    let available = adapter.is_some();
    let (compute, detail) = match (&adapter, prefer_gpu) {
        (Some(name), true) => match gpu_device().await {
            Ok(device) => (
                Compute {
                    device,
                    backend: "webgpu",
                },
                format!(
                    "WebGPU adapter: {}",
                    if name.is_empty() { "unnamed" } else { name }
                ),
            ),
            Err(e) => (
                Compute {
                    device: Device::flex(),
                    backend: "cpu",
                },
                format!("WebAssembly SIMD; {e}"),
            ),
        },
        (Some(_), false) => (
            Compute {
                device: Device::flex(),
                backend: "cpu",
            },
            "WebAssembly SIMD, chosen by the user".into(),
        ),
        (None, _) => (
            Compute {
                device: Device::flex(),
                backend: "cpu",
            },
            "WebAssembly SIMD; this browser offers no WebGPU adapter".into(),
        ),
    };
    let backend = compute.backend.to_string();
    COMPUTE.with(|c| *c.borrow_mut() = Some(compute));
    Response::Backend {
        backend,
        detail,
        webgpu_available: available,
    }
}

fn now_ms() -> f64 {
    scope().performance().map_or(0.0, |p| p.now())
}

async fn self_test() -> Response {
    let cpu = Device::flex();
    let cfg = DenoiserConfig::new()
        .with_image_size(32)
        .with_channels(vec![8, 16]);
    let model = cfg.init(&cpu);
    let x = Tensor::<4>::random(
        [4, 3, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &cpu,
    );
    let t = [10, 200, 400, 800];
    let cond = condition(&[Some(0), Some(3), Some(7), None], 8, &cpu);
    let start = now_ms();
    let out_cpu: Vec<f32> = match model
        .forward(x.clone(), &t, cond.clone())
        .into_data()
        .try_to_vec::<f32>()
    {
        Ok(v) => v,
        Err(e) => {
            return Response::Error {
                message: format!("CPU forward failed: {e:?}"),
            }
        }
    };
    let cpu_ms = now_ms() - start;
    let elements = out_cpu.len();
    if webgpu_adapter().await.is_none() {
        return Response::SelfTest {
            cpu_ms,
            gpu_ms: None,
            max_abs_diff: None,
            elements,
        };
    }
    let gpu = match gpu_device().await {
        Ok(d) => d,
        Err(message) => return Response::Error { message },
    };
    let start = now_ms();
    let model_gpu = model.to_device(&gpu);
    let out = model_gpu.forward(x.to_device(&gpu), &t, cond.to_device(&gpu));
    let out_gpu: Vec<f32> = match out.into_data_async().await.map(|d| d.try_to_vec::<f32>()) {
        Ok(Ok(v)) => v,
        other => {
            return Response::Error {
                message: format!("WebGPU forward failed: {other:?}"),
            }
        }
    };
    let gpu_ms = now_ms() - start;
    let max = out_cpu
        .iter()
        .zip(&out_gpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    if max > AGREEMENT_TOLERANCE {
        web_sys::console::warn_1(&format!("CPU and WebGPU differ by {max}").into());
    }
    Response::SelfTest {
        cpu_ms,
        gpu_ms: Some(gpu_ms),
        max_abs_diff: Some(max),
        elements,
    }
}

async fn decode_image(id: u32, name: String, bytes: Option<Vec<u8>>) {
    let bytes = bytes.unwrap_or_default();
    match decode_file(&bytes).await {
        Ok(decoded) => {
            let (w, h) = decoded.image.dimensions();
            reply(
                &Response::Decoded {
                    id,
                    width: w,
                    height: h,
                    notes: decoded.notes,
                },
                Some(&rgba(&decoded.image)),
            );
        }
        Err(message) => reply(&Response::Failed { id, name, message }, None),
    }
}

async fn fetch_bytes(path: &str) -> Result<Vec<u8>, String> {
    crate::bridge::fetched_bytes(scope().fetch_with_str(path), path).await
}

/// Longest wait for the backend's initialisation (requested first, but run concurrently).
const INIT_WAIT_MS: u32 = 60_000;

/// Interval of [`wait_for`]'s polls.
const POLL_MS: u32 = 10;

/// Poll `ready` every [`POLL_MS`] until it gives a value; `None` once `limit_ms` (if any) has
/// passed without one. The other tasks of the worker run between polls.
async fn wait_for<T>(limit_ms: Option<u32>, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let mut waited = 0;
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if limit_ms.is_some_and(|limit| waited >= limit) {
            return None;
        }
        gloo_timers::future::TimeoutFuture::new(POLL_MS).await;
        waited += POLL_MS;
    }
}

/// The compute device, once `Init` has chosen it (an analysis sent right after `Init` waits
/// for it).
async fn compute() -> Result<Compute, String> {
    wait_for(Some(INIT_WAIT_MS), || COMPUTE.with(|c| c.borrow().clone()))
        .await
        .ok_or_else(|| "the compute backend was not initialised".into())
}

/// Whether the page cancelled the analysis of image `id`; the request is consumed.
fn take_cancel(id: u32) -> bool {
    CANCELLED.with(|c| c.borrow_mut().remove(&id))
}

/// Fetch the model once (the browser caches it) and build it on the current device. Callers
/// that come while it is loading (the preload after `Init` and the first analysis) wait for
/// that load instead of fetching and building the model a second time.
async fn classifier() -> Result<CellClassifier, String> {
    let compute = compute().await?;
    wait_for(None, || (!MODEL_LOADING.with(|l| l.get())).then_some(())).await;
    if let Some((clf, backend)) = CLASSIFIER.with(|c| c.borrow().clone()) {
        if backend == compute.backend {
            return Ok(clf);
        }
    }
    MODEL_LOADING.with(|l| l.set(true));
    let loaded = load_classifier(&compute).await;
    MODEL_LOADING.with(|l| l.set(false));
    loaded
}

/// Fetch the model files if this worker has not yet, and build the classifier on `compute`'s
/// device (see [`classifier`], the only caller).
async fn load_classifier(compute: &Compute) -> Result<CellClassifier, String> {
    if FILES.with(|f| f.borrow().is_none()) {
        let card = fetch_bytes(&format!("./model/{MODEL_STEM}.json")).await?;
        let card =
            ModelFiles::parse_card(&String::from_utf8_lossy(&card)).map_err(|e| e.to_string())?;
        let url = ModelFiles::weights_url(&card, MODEL_STEM);
        let weights = fetch_bytes(&format!("./model/{url}")).await?;
        let files = ModelFiles::new(card, weights).map_err(|e| e.to_string())?;
        reply(
            &Response::Model {
                name: files.card.name.clone(),
                version: files.card.version.clone(),
                sha256: files.sha256(),
            },
            None,
        );
        FILES.with(|f| *f.borrow_mut() = Some(files));
    }
    let files = FILES
        .with(|f| f.borrow().clone())
        .ok_or("model not loaded")?;
    let clf = files
        .classifier(compute.device.clone())
        .map_err(|e| e.to_string())?;
    CLASSIFIER.with(|c| *c.borrow_mut() = Some((clf.clone(), compute.backend)));
    Ok(clf)
}

async fn yield_now() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

fn rgba(img: &image::RgbImage) -> Vec<u8> {
    img.pixels()
        .flat_map(|p| [p.0[0], p.0[1], p.0[2], 255])
        .collect()
}

/// How an analysis (or a part of one) ended, when it did not fail.
struct Outcome {
    /// Stopped by the page's cancel.
    cancelled: bool,
    /// Milliseconds from its start to its first diagnosis.
    first_ms: Option<f64>,
}

/// One cell to classify: where it is, its model input, its 128x128 preview (RGBA).
struct Job {
    at: SharedCell,
    input: CellCrop,
    preview_rgba: Vec<u8>,
}

/// Longest wait for the page's [`Request::Plan`] after a [`Response::Share`]: the page answers
/// at once, from the message handler, so only a page that stopped answering waits this long.
const PLAN_WAIT_MS: u32 = 60_000;

/// Whether this worker computes on WebGPU.
fn on_gpu() -> bool {
    COMPUTE
        .with(|c| c.borrow().as_ref().map(|c| c.backend == "webgpu"))
        .unwrap_or(false)
}

/// Detect the white cells of an image and classify them: all of them here, or, on the CPU with
/// more than one cell, the first part of them while the page hands the other parts to idle
/// workers, this one included once it is done (the page decides how many parts, see
/// [`crate::pool`]).
async fn analyze(
    id: u32,
    name: String,
    bytes: Vec<u8>,
    rbc_diameter_px: Option<f32>,
) -> Result<Outcome, String> {
    let start = now_ms();
    let img = decode_file(&bytes).await?.image;
    let clf = classifier().await?;
    let size = clf.card.denoiser.image_size;
    let (f, cells) = model_core::smear::prepare(&img, &DetectOptions { rbc_diameter_px }, size);
    reply(
        &Response::Found {
            id,
            findings: ImageFindings {
                wbc: cells.len(),
                rbc_count: f.rbc_count,
                platelet_count: f.platelet_count,
                rbc_diameter_px: f.rbc_diameter_px,
                rbc_reading_px: f.rbc_reading_px,
                scale_um_per_px: f.scale_um_per_px,
                single_cell: f.single_cell,
            },
        },
        None,
    );
    if cells.is_empty() {
        reply(
            &Response::Failed {
                id,
                name,
                message: model_core::Error::NoWhiteCell.to_string(),
            },
            None,
        );
        return Ok(Outcome {
            cancelled: false,
            first_ms: None,
        });
    }
    let jobs: Vec<Job> = cells
        .into_iter()
        .enumerate()
        .map(|(index, c)| Job {
            at: SharedCell {
                index,
                bbox: c.cell.bbox,
            },
            preview_rgba: rgba(&c.preview),
            input: c.input,
        })
        .collect();
    let parts = if on_gpu() || jobs.len() < 2 {
        1
    } else {
        offer_share(id, name, size, &jobs).await?
    };
    let mine = jobs
        .into_iter()
        .filter(|j| part_of(j.at.index, parts) == 0)
        .collect();
    classify(id, &clf, mine, start).await
}

/// Send the page every cell of image `id` to share with idle workers; wait for its answer, the
/// number of parts (this worker classifies part 0).
async fn offer_share(id: u32, name: String, size: usize, jobs: &[Job]) -> Result<usize, String> {
    let (cells, bytes) = SharedCells::pack(
        size,
        SOURCE_SIZE as usize,
        jobs.iter()
            .map(|j| (j.at, &j.input.pixels[..], &j.preview_rgba[..])),
    )?;
    reply(&Response::Share { id, name, cells }, Some(&bytes));
    wait_for(Some(PLAN_WAIT_MS), || {
        PLANS.with(|p| p.borrow_mut().remove(&id))
    })
    .await
    .ok_or_else(|| "the page did not say how to share the cells".to_string())
}

/// Classify part `part` of `parts` of the cells another worker detected and packed.
async fn classify_part(
    id: u32,
    part: usize,
    parts: usize,
    cells: SharedCells,
    bytes: Vec<u8>,
) -> Result<Outcome, String> {
    let start = now_ms();
    let clf = classifier().await?;
    let size = clf.card.denoiser.image_size;
    if cells.input_size != size {
        return Err(format!(
            "shared cells of {0}x{0} for a model of {size}x{size}",
            cells.input_size
        ));
    }
    let mine = cells
        .unpack(&bytes, part, parts)?
        .into_iter()
        .map(|u| Job {
            at: u.at,
            input: CellCrop {
                size,
                pixels: u.input,
            },
            preview_rgba: u.preview_rgba,
        })
        .collect();
    classify(id, &clf, mine, start).await
}

/// Classify `jobs` of image `id`, [`CELLS_PER_BATCH`] at a time, sending each cell and the
/// progress as they come; stops between rounds when the page cancels the image. `start`: when
/// the work began, for `first_ms`.
async fn classify(
    id: u32,
    clf: &CellClassifier,
    jobs: Vec<Job>,
    start: f64,
) -> Result<Outcome, String> {
    let total = jobs.len();
    let mut done = 0;
    let mut first_ms = None;
    let classify_start = now_ms();
    for chunk in jobs.chunks(CELLS_PER_BATCH) {
        let crops: Vec<CellCrop> = chunk.iter().map(|j| j.input.clone()).collect();
        let Some(diagnoses) = diagnose(clf, crops, || take_cancel(id)).await? else {
            return Ok(Outcome {
                cancelled: true,
                first_ms,
            });
        };
        for (d, j) in diagnoses.iter().zip(chunk) {
            let cell = cell_result(clf, d, j.at);
            reply(&Response::Cell { id, cell }, Some(&j.preview_rgba));
            first_ms.get_or_insert(now_ms() - start);
        }
        done += chunk.len();
        let secs = (now_ms() - classify_start) / 1000.0;
        reply(
            &Response::Progress {
                id,
                done,
                total,
                cells_per_second: done as f64 / secs.max(1e-3),
            },
            None,
        );
    }
    Ok(Outcome {
        cancelled: false,
        first_ms,
    })
}

/// Diagnose `crops` (one batch of the classifier), round by round, letting the worker's other
/// tasks run between rounds; `None` when `cancelled` says so before a round.
async fn diagnose(
    clf: &CellClassifier,
    crops: Vec<CellCrop>,
    cancelled: impl Fn() -> bool,
) -> Result<Option<Vec<Diagnosis>>, String> {
    let gpu = on_gpu();
    let mut run = clf.start(crops.clone());
    while let Some(inputs) = run.next_inputs() {
        yield_now().await;
        if cancelled() {
            return Ok(None);
        }
        let pred = if gpu {
            clf.predict_async(&inputs).await
        } else {
            clf.predict(&inputs)
        }
        .map_err(|e| e.to_string())?;
        run.absorb(&pred);
    }
    Ok(Some(clf.finish(run.into_scores(), &crops)))
}

/// The page's form of the diagnosis of the cell at `at`.
fn cell_result(clf: &CellClassifier, d: &Diagnosis, at: SharedCell) -> CellResult {
    let names = &clf.card.classes;
    CellResult {
        index: at.index,
        bbox: at.bbox,
        class: names[d.class].clone(),
        probs: names.iter().cloned().zip(d.probs.iter().copied()).collect(),
        confidence: d.confidence,
        uncertainty: d.uncertainty,
        anomaly: d.anomaly,
        triage: d.triage.name().into(),
        triage_reason: model_core::triage_reason::triage_reason(d, &clf.card),
        runner_up: names[d.runner_up].clone(),
        evals: d.evals,
        counterfactual: d.map.counterfactual.clone(),
        disagreement: d.map.disagreement.clone(),
        map_size: d.map.size,
        colour: d.colour,
        unusual_colour: d.unusual_colour,
        sharpness: d.sharpness,
        out_of_focus: d.out_of_focus,
    }
}

/// Classify the cell a reviewer marked at `centre` of image `id`'s file `bytes`
/// ([`Request::AddCell`]): its result and its 128x128 RGBA preview. Runs beside the analyses
/// (one cell: a fraction of a second), so the reviewer does not wait for a queue. The file is
/// decoded once for all the marks on it in a row ([`MARKED`]).
async fn add_cell(
    id: u32,
    index: usize,
    centre: [u32; 2],
    rbc_diameter_px: f32,
    bytes: Vec<u8>,
) -> Result<(CellResult, Vec<u8>), String> {
    let kept = MARKED.with(|m| m.borrow_mut().kept(id, &bytes));
    let img = match kept {
        Some(img) => img,
        None => {
            let img = decode_file(&bytes).await?.image;
            MARKED.with(|m| m.borrow_mut().keep(id, &bytes, img))
        }
    };
    let clf = classifier().await?;
    let size = clf.card.denoiser.image_size;
    let cell = model_core::smear::prepare_marked(&img, centre, rbc_diameter_px, size)
        .map_err(|e| e.to_string())?;
    let d = diagnose(&clf, vec![cell.input], || false)
        .await?
        .and_then(|d| d.into_iter().next())
        .ok_or("the classifier gave no diagnosis")?;
    let at = SharedCell {
        index,
        bbox: cell.cell.bbox,
    };
    Ok((cell_result(&clf, &d, at), rgba(&cell.preview)))
}

/// Run an analysis (or a part of one) of image `id` when this worker's earlier ones have
/// finished, and end it with exactly one `Done` (after a `Failed` when it failed), so the page,
/// and the pool's count of what each worker holds, know it ended.
async fn queued(
    id: u32,
    name: String,
    work: impl std::future::Future<Output = Result<Outcome, String>>,
) {
    ACTIVE.with(|a| a.borrow_mut().push(id));
    wait_for(None, || (!BUSY.with(|b| b.get())).then_some(())).await;
    BUSY.with(|b| b.set(true));
    let start = now_ms();
    let outcome = if take_cancel(id) {
        Outcome {
            cancelled: true,
            first_ms: None,
        }
    } else {
        work.await.unwrap_or_else(|message| {
            reply(&Response::Failed { id, name, message }, None);
            Outcome {
                cancelled: false,
                first_ms: None,
            }
        })
    };
    reply(
        &Response::Done {
            id,
            cancelled: outcome.cancelled,
            first_ms: outcome.first_ms,
            total_ms: now_ms() - start,
        },
        None,
    );
    ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        if let Some(i) = a.iter().position(|&x| x == id) {
            a.remove(i);
        }
        if !a.contains(&id) {
            CANCELLED.with(|c| c.borrow_mut().remove(&id));
        }
    });
    BUSY.with(|b| b.set(false));
}

async fn handle(request: Request, bytes: Option<Vec<u8>>) {
    match request {
        Request::Init { prefer_gpu } => {
            reply(&init(prefer_gpu).await, None);
            // Load the model while the page is idle, so that the first image (or the first
            // share of a smear's cells) sent here does not wait for it. A failure here is
            // reported by the analysis that needs the model, which tries again.
            if let Err(e) = classifier().await {
                web_sys::console::warn_1(&format!("model not preloaded: {e}").into());
            }
        }
        Request::Decode { id, name } => decode_image(id, name, bytes).await,
        Request::SelfTest => reply(&self_test().await, None),
        Request::Cancel { id } => {
            // Only an analysis running or queued here can be cancelled: a stale cancel must
            // not stop a later analysis of the same image.
            if ACTIVE.with(|a| a.borrow().contains(&id)) {
                CANCELLED.with(|c| c.borrow_mut().insert(id));
            }
        }
        Request::Plan { id, parts } => PLANS.with(|p| {
            p.borrow_mut().insert(id, parts.max(1));
        }),
        Request::Analyze {
            id,
            name,
            rbc_diameter_px,
        } => {
            // An analysis decodes an image of its own: the marked one is not kept beside it.
            MARKED.with(|m| m.borrow_mut().forget());
            let work = analyze(id, name.clone(), bytes.unwrap_or_default(), rbc_diameter_px);
            queued(id, name, work).await;
        }
        Request::ClassifyPart {
            id,
            name,
            part,
            parts,
            cells,
        } => {
            let work = classify_part(id, part, parts, cells, bytes.unwrap_or_default());
            queued(id, name, work).await;
        }
        Request::AddCell {
            id,
            index,
            centre,
            rbc_diameter_px,
        } => match add_cell(
            id,
            index,
            centre,
            rbc_diameter_px,
            bytes.unwrap_or_default(),
        )
        .await
        {
            Ok((cell, preview)) => reply(&Response::CellAdded { id, cell }, Some(&preview)),
            Err(message) => reply(&Response::AddFailed { id, index, message }, None),
        },
    }
}

/// Install the message handler. Called once by the worker binary.
pub fn start() {
    // A panic traps the WebAssembly instance (panics abort on wasm32): nothing after it runs
    // and its state is not to be trusted. Say why first; the page replaces the worker.
    std::panic::set_hook(Box::new(|info| {
        let message = format!("panic: {info}").replace('\n', " ");
        reply(&Response::Crashed { message }, None);
    }));
    let cb =
        Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| match decode(&ev.data()) {
            Ok((json, bytes)) => match serde_json::from_str::<Request>(&json) {
                Ok(req) => spawn_local(handle(req, bytes)),
                Err(e) => reply(
                    &Response::Error {
                        message: format!("bad request: {e}"),
                    },
                    None,
                ),
            },
            Err(message) => reply(&Response::Error { message }, None),
        });
    scope().set_onmessage(Some(cb.as_ref().unchecked_ref()));
    cb.forget();
    reply(&Response::Ready, None);
}
