//! Page side of the worker protocol: start the worker, send requests, receive responses.

use crate::pool::{Dispatch, Job, Parts, MAX_RESTARTS};
use crate::protocol::{Request, Response};
use crate::share::SharedCells;
use js_sys::{Array, Uint8Array};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

/// Encode a message as `[json, bytes?]`.
pub fn encode(json: &str, bytes: Option<&[u8]>) -> (Array, Array) {
    let msg = Array::new();
    msg.push(&JsValue::from_str(json));
    let transfer = Array::new();
    if let Some(b) = bytes {
        let arr = Uint8Array::from(b);
        transfer.push(&arr.buffer());
        msg.push(&arr);
    }
    (msg, transfer)
}

/// Decode a `[json, bytes?]` message.
pub fn decode(data: &JsValue) -> Result<(String, Option<Vec<u8>>), String> {
    let arr: Array = data
        .clone()
        .dyn_into()
        .map_err(|_| "message is not an array".to_string())?;
    let json = arr.get(0).as_string().ok_or("message has no JSON part")?;
    let bytes = arr.get(1).dyn_into::<Uint8Array>().ok().map(|a| a.to_vec());
    Ok((json, bytes))
}

/// A running compute worker.
#[derive(Clone)]
pub struct WorkerHandle {
    worker: Worker,
    /// Requests waiting for the worker's `Ready` (None once it is ready).
    pending: Pending,
    /// False once terminated: whatever it still sent is dropped.
    alive: Rc<Cell<bool>>,
}

/// Requests held until the worker is ready (`None` once it is).
type Pending = Rc<RefCell<Option<Vec<(String, Option<Vec<u8>>)>>>>;

fn post(worker: &Worker, json: &str, bytes: Option<&[u8]>) {
    let (msg, transfer) = encode(json, bytes);
    if let Err(e) = worker.post_message_with_transfer(&msg, &transfer) {
        web_sys::console::error_1(&e);
    }
}

impl WorkerHandle {
    /// Start the worker (built by Trunk as `worker_loader.js`) and route its responses to
    /// `on_response`; an uncaught error in the worker (a WebAssembly trap after a panic, a
    /// failed script) arrives as [`Response::Crashed`].
    pub fn start(
        on_response: impl Fn(Response, Option<Vec<u8>>) + 'static,
    ) -> Result<Self, String> {
        let worker = Worker::new("./worker_loader.js")
            .map_err(|e| format!("cannot start the compute worker: {e:?}"))?;
        let pending: Pending = Rc::new(RefCell::new(Some(Vec::new())));
        let alive = Rc::new(Cell::new(true));
        let on_response = Rc::new(on_response);
        let (on_error, alive_e) = (on_response.clone(), alive.clone());
        let error_cb = Closure::<dyn Fn(ErrorEvent)>::new(move |ev: ErrorEvent| {
            // Handled here: not also reported as the page's own uncaught error.
            ev.prevent_default();
            if alive_e.get() {
                on_error(
                    Response::Crashed {
                        message: ev.message(),
                    },
                    None,
                );
            }
        });
        worker.set_onerror(Some(error_cb.as_ref().unchecked_ref()));
        error_cb.forget(); // lives as long as the worker; a few per page at most
        let (w, p, alive_m) = (worker.clone(), pending.clone(), alive.clone());
        let cb = Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
            if !alive_m.get() {
                return;
            }
            match decode(&ev.data()) {
                Ok((json, bytes)) => match serde_json::from_str::<Response>(&json) {
                    Ok(Response::Ready) => {
                        for (json, bytes) in p.borrow_mut().take().unwrap_or_default() {
                            post(&w, &json, bytes.as_deref());
                        }
                    }
                    Ok(r) => on_response(r, bytes),
                    Err(e) => on_response(
                        Response::Error {
                            message: format!("bad worker message: {e}"),
                        },
                        None,
                    ),
                },
                Err(e) => on_response(Response::Error { message: e }, None),
            }
        });
        worker.set_onmessage(Some(cb.as_ref().unchecked_ref()));
        cb.forget(); // lives as long as the worker
        Ok(Self {
            worker,
            pending,
            alive,
        })
    }

    /// Stop the worker at once; nothing it still sends reaches the page.
    pub fn terminate(&self) {
        self.alive.set(false);
        self.worker.terminate();
    }

    /// Send a request, with optional bytes (transferred, not copied).
    pub fn send(&self, request: &Request, bytes: Option<&[u8]>) {
        let json = serde_json::to_string(request).unwrap_or_default();
        if let Some(queue) = self.pending.borrow_mut().as_mut() {
            queue.push((json, bytes.map(<[u8]>::to_vec)));
            return;
        }
        post(&self.worker, &json, bytes);
    }
}

/// Await a `fetch()` promise and read the whole body; `what` names the resource in errors.
pub async fn fetched_bytes(fetch: js_sys::Promise, what: &str) -> Result<Vec<u8>, String> {
    use wasm_bindgen_futures::JsFuture;
    let resp = JsFuture::from(fetch)
        .await
        .map_err(|e| format!("{what}: {}", js_error_text(&e)))?;
    let resp: web_sys::Response = resp
        .dyn_into()
        .map_err(|_| format!("{what}: not a response"))?;
    if !resp.ok() {
        return Err(format!("{what}: HTTP {}", resp.status()));
    }
    let body = resp
        .array_buffer()
        .map_err(|e| format!("{what}: {}", js_error_text(&e)))?;
    let buf = JsFuture::from(body)
        .await
        .map_err(|e| format!("{what}: {}", js_error_text(&e)))?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// The browser's clock now, as an ISO 8601 time in UTC ("2026-12-07T20:05:00.000Z"): the time
/// of a review, a sign-off or a report.
pub fn now_iso() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

/// A thrown JavaScript value as a person reads it: an `Error`'s name and message ("TypeError:
/// Failed to fetch"), without its stack; a string as it is; anything else as debug text.
pub fn js_error_text(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        format!(
            "{}: {}",
            String::from(err.name()),
            String::from(err.message())
        )
    } else if let Some(text) = e.as_string() {
        text
    } else {
        format!("{e:?}")
    }
}

/// The page's compute workers: the first decodes, probes the backend, self-tests and, on
/// WebGPU, classifies; on the CPU it is joined by more workers, and the page's work queue
/// ([`Dispatch`]) gives each idle worker the next job: a part of a smear already started, else
/// the next image's analysis. Responses reach the page with the index of the worker that sent
/// them.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Rc<PoolInner>,
}

/// An analysis waiting for a worker: its request and the file's bytes.
type Queued = (Request, Option<Vec<u8>>);

/// A shared smear's cells: the file name, their description and their packed bytes.
type Smear = (String, SharedCells, Vec<u8>);

struct PoolInner {
    workers: RefCell<Vec<WorkerHandle>>,
    dispatch: RefCell<Dispatch<Queued>>,
    /// Shared smears whose parts' reports are merged.
    parts: RefCell<Parts>,
    /// The cells of shared smears with parts still to hand out.
    shared: RefCell<HashMap<u32, Smear>>,
    /// CPU workers to run.
    size: usize,
    /// Workers started in place of ones that stopped.
    restarts: Cell<usize>,
    on_response: Box<OnResponse>,
}

/// The page's handler: a response, its attached bytes, the index of the worker that sent it.
type OnResponse = dyn Fn(Response, Option<Vec<u8>>, usize);

impl WorkerPool {
    /// Start the first worker; `size` CPU workers run once it reports the CPU backend.
    pub fn start(
        size: usize,
        on_response: impl Fn(Response, Option<Vec<u8>>, usize) + 'static,
    ) -> Result<Self, String> {
        let inner = Rc::new(PoolInner {
            workers: RefCell::new(Vec::new()),
            dispatch: RefCell::new(Dispatch::new()),
            parts: RefCell::new(Parts::default()),
            shared: RefCell::new(HashMap::new()),
            size: size.max(1),
            restarts: Cell::new(0),
            on_response: Box::new(on_response),
        });
        let first = start_member(&inner, 0)?;
        inner.workers.borrow_mut().push(first);
        Ok(Self { inner })
    }

    /// Send a request: an analysis joins the work queue, a cancel goes to every worker running
    /// a job of that image (and drops its queued ones), anything else to the first worker.
    pub fn send(&self, request: &Request, bytes: Option<&[u8]>) {
        match request {
            Request::Analyze { id, .. } => {
                let queued = (request.clone(), bytes.map(<[u8]>::to_vec));
                self.inner.dispatch.borrow_mut().analyze(*id, queued);
                pump(&self.inner);
            }
            Request::Cancel { id } => cancel(&self.inner, *id),
            _ => send_to(&self.inner, 0, request, bytes),
        }
    }
}

fn send_to(inner: &PoolInner, worker: usize, request: &Request, bytes: Option<&[u8]>) {
    let handle = inner.workers.borrow().get(worker).cloned();
    if let Some(h) = handle {
        h.send(request, bytes);
    }
}

/// Give every idle worker its next job.
fn pump(inner: &PoolInner) {
    let jobs = inner.dispatch.borrow_mut().pump();
    for (w, job) in jobs {
        match job {
            Job::Analyze {
                payload: (request, bytes),
                ..
            } => send_to(inner, w, &request, bytes.as_deref()),
            Job::Part { id, part, parts } => {
                // Each worker is sent its part's cells only. A buffer that does not match its
                // description is sent whole: the worker's unpack reports the mismatch and its
                // part ends with that error, as every other failure.
                let mine = inner.shared.borrow().get(&id).map(|(name, cells, bytes)| {
                    let (cells, bytes) = cells
                        .part(bytes, part, parts)
                        .unwrap_or_else(|_| (cells.clone(), bytes.clone()));
                    (name.clone(), cells, bytes)
                });
                let Some((name, cells, bytes)) = mine else {
                    // The smear's cells are gone (a cancel drops its parts with them): the part
                    // ends unrun, and the smear's Done comes when nothing of it is left.
                    inner.dispatch.borrow_mut().finish(w, id);
                    let over = inner.parts.borrow_mut().dropped(id, 1);
                    if let Some(done) = over {
                        (inner.on_response)(done, None, w);
                    }
                    continue;
                };
                inner.parts.borrow_mut().began(id, w, part);
                let request = Request::ClassifyPart {
                    id,
                    name,
                    part,
                    parts,
                    cells,
                };
                send_to(inner, w, &request, Some(&bytes));
            }
        }
    }
    // The cells of smears with no part left to hand out are no longer needed.
    let dispatch = inner.dispatch.borrow();
    inner
        .shared
        .borrow_mut()
        .retain(|&id, _| dispatch.waiting_parts(id));
}

/// The page cancels image `id`: tell the workers running a job of it; its queued analyses end
/// at once as cancelled, and its queued parts are dropped.
fn cancel(inner: &PoolInner, id: u32) {
    let c = inner.dispatch.borrow_mut().cancel(id);
    for &w in &c.running {
        send_to(inner, w, &Request::Cancel { id }, None);
    }
    let cancelled = Response::Done {
        id,
        cancelled: true,
        first_ms: None,
        total_ms: 0.0,
    };
    for _ in 0..c.analyses {
        (inner.on_response)(cancelled.clone(), None, 0);
    }
    if c.parts > 0 {
        inner.shared.borrow_mut().remove(&id);
        let over = inner.parts.borrow_mut().dropped(id, c.parts);
        if let Some(done) = over {
            (inner.on_response)(done, None, 0);
        }
    }
}

/// Worker `owner`'s analysis of image `id` offers its cells: cut them into parts (the owner
/// classifies part 0), keep the others for idle workers and merge the parts' reports.
fn share(
    inner: &PoolInner,
    owner: usize,
    id: u32,
    name: String,
    cells: SharedCells,
    bytes: Vec<u8>,
) {
    let total = cells.cells.len();
    let parts = inner.dispatch.borrow_mut().share(id, total);
    if parts > 1 {
        inner.parts.borrow_mut().start(id, owner, total, parts);
        inner.shared.borrow_mut().insert(id, (name, cells, bytes));
    }
    send_to(inner, owner, &Request::Plan { id, parts }, None);
    pump(inner);
}
/// Start worker `index` of the pool, its responses routed through [`on_member_response`].
fn start_member(inner: &Rc<PoolInner>, index: usize) -> Result<WorkerHandle, String> {
    let weak = Rc::downgrade(inner);
    WorkerHandle::start(move |r, bytes| {
        if let Some(inner) = weak.upgrade() {
            on_member_response(&inner, index, r, bytes);
        }
    })
}

/// Book-keep one worker's response, then pass it on: the first worker's backend decides
/// whether the other workers run (and the page is told how many); the others' backend and
/// model reports repeat the first's and are not passed on.
fn on_member_response(inner: &Rc<PoolInner>, index: usize, r: Response, bytes: Option<Vec<u8>>) {
    let r = match r {
        Response::Backend { .. } | Response::Model { .. } if index > 0 => return,
        Response::Backend {
            backend,
            detail,
            webgpu_available,
        } => {
            let cpu = backend == "cpu";
            inner.dispatch.borrow_mut().set_gpu(!cpu);
            let mut detail = detail;
            if cpu {
                let started = start_cpu_members(inner);
                let running = inner.workers.borrow().len();
                if running > 1 {
                    detail = format!("{detail}; {running} workers in parallel");
                }
                if let Err(e) = started {
                    detail = format!("{detail} ({e})");
                }
            }
            Response::Backend {
                backend,
                detail,
                webgpu_available,
            }
        }
        Response::Share { id, name, cells } => {
            share(inner, index, id, name, cells, bytes.unwrap_or_default());
            return;
        }
        Response::Crashed { message } => {
            crashed(inner, index, message);
            return;
        }
        r => r,
    };
    let ended = match &r {
        Response::Done { id, .. } => Some(*id),
        _ => None,
    };
    let merged = inner.parts.borrow_mut().merge(index, r);
    if let Some(r) = merged {
        (inner.on_response)(r, bytes, index);
    }
    if let Some(id) = ended {
        inner.dispatch.borrow_mut().finish(index, id);
        pump(inner);
    }
}

/// Worker `index` stopped beyond recovery: start a new one in its place (on the CPU: a worker
/// on WebGPU may have lost its device), end the job it held as failed, as the worker itself
/// would have (`Failed`, then `Done`, so shared smears and the queue go on), and tell the page,
/// which asks the new worker again for, or fails, what else it awaited from that worker. After [`MAX_RESTARTS`] the pool gives up
/// with an error for the page instead of starting workers that keep stopping.
fn crashed(inner: &Rc<PoolInner>, index: usize, message: String) {
    let Some(old) = inner.workers.borrow().get(index).cloned() else {
        return;
    };
    old.terminate();
    let message = format!("the compute worker stopped ({message})");
    if inner.restarts.get() >= MAX_RESTARTS {
        (inner.on_response)(
            Response::Error {
                message: format!(
                    "{message}, after {MAX_RESTARTS} restarts already: reload the page"
                ),
            },
            None,
            index,
        );
        return;
    }
    inner.restarts.set(inner.restarts.get() + 1);
    match start_member(inner, index) {
        Ok(fresh) => {
            fresh.send(&Request::Init { prefer_gpu: false }, None);
            inner.workers.borrow_mut()[index] = fresh;
        }
        Err(e) => {
            (inner.on_response)(Response::Error { message: e }, None, index);
            return;
        }
    }
    let held = inner.dispatch.borrow().crashed(index);
    if let Some(id) = held {
        let failed = Response::Failed {
            id,
            name: String::new(),
            message: format!(
                "{message}: this image's analysis did not finish (what it sent is kept); the other images are not affected"
            ),
        };
        on_member_response(inner, index, failed, None);
        let done = Response::Done {
            id,
            cancelled: false,
            first_ms: None,
            total_ms: 0.0,
        };
        on_member_response(inner, index, done, None);
    }
    (inner.on_response)(Response::Crashed { message }, None, index);
}

/// Start the CPU workers the pool still lacks (each initialised on the CPU).
fn start_cpu_members(inner: &Rc<PoolInner>) -> Result<(), String> {
    while inner.workers.borrow().len() < inner.size {
        let index = inner.workers.borrow().len();
        let w = start_member(inner, index)?;
        w.send(&Request::Init { prefer_gpu: false }, None);
        inner.workers.borrow_mut().push(w);
        inner.dispatch.borrow_mut().add_worker();
    }
    pump(inner);
    Ok(())
}
