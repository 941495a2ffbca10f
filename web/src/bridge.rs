//! Page side of the worker protocol: start the worker, send requests, receive responses.

use crate::pool::{Dispatch, Parts};
use crate::protocol::{Request, Response};
use crate::share::SharedCells;
use js_sys::{Array, Uint8Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

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
    /// `on_response`.
    pub fn start(
        on_response: impl Fn(Response, Option<Vec<u8>>) + 'static,
    ) -> Result<Self, String> {
        let worker = Worker::new("./worker_loader.js")
            .map_err(|e| format!("cannot start the compute worker: {e:?}"))?;
        let pending: Pending = Rc::new(RefCell::new(Some(Vec::new())));
        let (w, p) = (worker.clone(), pending.clone());
        let cb = Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
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
        cb.forget(); // lives as long as the page
        Ok(Self { worker, pending })
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
        .map_err(|e| format!("{what}: {e:?}"))?;
    let resp: web_sys::Response = resp
        .dyn_into()
        .map_err(|_| format!("{what}: not a response"))?;
    if !resp.ok() {
        return Err(format!("{what}: HTTP {}", resp.status()));
    }
    let body = resp.array_buffer().map_err(|e| format!("{what}: {e:?}"))?;
    let buf = JsFuture::from(body)
        .await
        .map_err(|e| format!("{what}: {e:?}"))?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// The page's compute workers: the first decodes, probes the backend, self-tests and, on
/// WebGPU, classifies; on the CPU it is joined by more workers and each image's analysis goes
/// to the least busy one ([`Dispatch`]). Responses reach the page with the index of the
/// worker that sent them.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Rc<PoolInner>,
}

struct PoolInner {
    workers: RefCell<Vec<WorkerHandle>>,
    dispatch: RefCell<Dispatch>,
    /// Shared images whose parts' reports are merged.
    parts: RefCell<Parts>,
    /// CPU workers to run.
    size: usize,
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
            size: size.max(1),
            on_response: Box::new(on_response),
        });
        let first = start_member(&inner, 0)?;
        inner.workers.borrow_mut().push(first);
        Ok(Self { inner })
    }

    /// Send a request: an analysis to the worker [`Dispatch`] picks, a cancel to every worker
    /// holding (a part of) that image, anything else to the first worker.
    pub fn send(&self, request: &Request, bytes: Option<&[u8]>) {
        let targets = match request {
            Request::Analyze { id, .. } => vec![self.inner.dispatch.borrow_mut().assign(*id)],
            Request::Cancel { id } => self.inner.dispatch.borrow_mut().cancel(*id),
            _ => vec![0],
        };
        for w in targets {
            send_to(&self.inner, w, request, bytes);
        }
    }
}

fn send_to(inner: &PoolInner, worker: usize, request: &Request, bytes: Option<&[u8]>) {
    let handle = inner.workers.borrow().get(worker).cloned();
    if let Some(h) = handle {
        h.send(request, bytes);
    }
}

/// Worker `owner` offers image `id`'s cells: hand a part each to the idle workers, tell the
/// owner how many parts there are, and merge the parts' reports from now on.
fn share(inner: &PoolInner, owner: usize, id: u32, name: String, cells: SharedCells, bytes: &[u8]) {
    let total = cells.cells.len();
    let helpers = inner.dispatch.borrow_mut().share(id, owner, total);
    let parts = helpers.len() + 1;
    if parts > 1 {
        let workers = std::iter::once(owner)
            .chain(helpers.iter().copied())
            .collect();
        inner.parts.borrow_mut().start(id, workers, total);
    }
    send_to(inner, owner, &Request::Plan { id, parts }, None);
    for (k, &h) in helpers.iter().enumerate() {
        // Each helper is sent its own cells only (the owner keeps its part).
        let (mine, mine_bytes) = match cells.part(bytes, k + 1, parts) {
            Ok(p) => p,
            // A buffer that does not match its description is sent whole: the helper's unpack
            // reports the mismatch and its part ends with that error, as every other failure.
            Err(_) => (cells.clone(), bytes.to_vec()),
        };
        let request = Request::ClassifyPart {
            id,
            name: name.clone(),
            part: k + 1,
            parts,
            cells: mine,
        };
        send_to(inner, h, &request, Some(&mine_bytes));
    }
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
            share(
                inner,
                index,
                id,
                name,
                cells,
                bytes.as_deref().unwrap_or_default(),
            );
            return;
        }
        Response::Done { id, .. } => {
            inner.dispatch.borrow_mut().finish(index, id);
            r
        }
        r => r,
    };
    let Some(r) = inner.parts.borrow_mut().merge(index, r) else {
        return;
    };
    (inner.on_response)(r, bytes, index);
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
    Ok(())
}
